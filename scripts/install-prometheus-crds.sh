#!/usr/bin/env bash
# Fetch the prometheus-operator CRDs (ServiceMonitor, PodMonitor, PrometheusRule) the chart
# tests validate the monitoring manifests against. They come with Go's own module client: the
# module github.com/prometheus-operator/prometheus-operator carries them under
# example/prometheus-operator-crd/, and `go mod download` checks the module against its pinned
# hash below. They land in ~/.cache/vote-pipeline/prometheus-operator-crds/<version>/; a cached
# copy is reused without any network access. Prints the directory.
#   PROMETHEUS_CRDS_CACHE_DIR  overrides the cache root.
set -euo pipefail

module=github.com/prometheus-operator/prometheus-operator
version=v0.85.0
module_sum="h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="
files=(
  monitoring.coreos.com_servicemonitors.yaml
  monitoring.coreos.com_podmonitors.yaml
  monitoring.coreos.com_prometheusrules.yaml
)

cache_root="${PROMETHEUS_CRDS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vote-pipeline/prometheus-operator-crds}"
target="$cache_root/$version"

cached=1
for file in "${files[@]}"; do
  [[ -s "$target/$file" ]] || cached=0
done
if [[ $cached -eq 1 ]]; then
  echo "$target"
  exit 0
fi

command -v go >/dev/null || { echo "install-prometheus-crds: go is required" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A module cache of our own (writable, so the trap can remove it), outside any Go module.
info=$(cd "$work" && GOMODCACHE="$work/mod" GOFLAGS=-modcacherw \
  go mod download -json "$module@$version" </dev/null)
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$info"; }
if [[ "$(field Sum)" != "$module_sum" ]]; then
  echo "install-prometheus-crds: $module@$version has hash $(field Sum), expected $module_sum" >&2
  exit 1
fi
source_dir="$(field Dir)/example/prometheus-operator-crd"
mkdir -p "$target"
for file in "${files[@]}"; do
  install -m 0644 "$source_dir/$file" "$target/$file.tmp"
  mv -f "$target/$file.tmp" "$target/$file"
done
echo "$target"
