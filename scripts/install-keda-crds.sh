#!/usr/bin/env bash
# Fetch the KEDA CRDs (ScaledJob, ScaledObject, TriggerAuthentication,
# ClusterTriggerAuthentication) the chart and keda/ tests validate against. They come with Go's
# own module client: the module github.com/kedacore/keda/v2 carries them under
# config/crd/bases/, and `go mod download` checks the module against its pinned hash below (the
# version the control plane runs). They land in ~/.cache/vote-pipeline/keda-crds/<version>/; a
# cached copy is reused without any network access. Prints the directory.
#   KEDA_CRDS_CACHE_DIR  overrides the cache root.
set -euo pipefail

module=github.com/kedacore/keda/v2
version=v2.20.2
module_sum="h1:SR60v8uIcelbveS8n/1jcl8tLdBBIbHMxmdOHw8tKqA="
files=(
  keda.sh_scaledjobs.yaml
  keda.sh_scaledobjects.yaml
  keda.sh_triggerauthentications.yaml
  keda.sh_clustertriggerauthentications.yaml
)

cache_root="${KEDA_CRDS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vote-pipeline/keda-crds}"
target="$cache_root/$version"

cached=1
for file in "${files[@]}"; do
  [[ -s "$target/$file" ]] || cached=0
done
if [[ $cached -eq 1 ]]; then
  echo "$target"
  exit 0
fi

command -v go >/dev/null || { echo "install-keda-crds: go is required" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A module cache of our own (writable, so the trap can remove it), outside any Go module.
info=$(cd "$work" && GOMODCACHE="$work/mod" GOFLAGS=-modcacherw \
  go mod download -json "$module@$version" </dev/null)
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$info"; }
if [[ "$(field Sum)" != "$module_sum" ]]; then
  echo "install-keda-crds: $module@$version has hash $(field Sum), expected $module_sum" >&2
  exit 1
fi
source_dir="$(field Dir)/config/crd/bases"
mkdir -p "$target"
for file in "${files[@]}"; do
  install -m 0644 "$source_dir/$file" "$target/$file.tmp"
  mv -f "$target/$file.tmp" "$target/$file"
done
echo "$target"
