#!/usr/bin/env bash
# Fetch files a pinned Go module carries (CRDs, say) into a per-version cache, with Go's own
# module client: `go mod download` fetches the module and its hash must equal the pinned one.
# A cached copy is reused without any network access. Prints the cache directory.
#   fetch-module-files.sh <name> <module> <version> <h1:sum> <dir in module> <cache root> <file>...
# <name> prefixes messages; the files land in <cache root>/<version>/.
set -euo pipefail

name=$1 module=$2 version=$3 module_sum=$4 module_dir=$5 cache_root=$6
shift 6
files=("$@")
target="$cache_root/$version"

cached=1
for file in "${files[@]}"; do
  [[ -s "$target/$file" ]] || cached=0
done
if [[ $cached -eq 1 ]]; then
  echo "$target"
  exit 0
fi

command -v go >/dev/null || { echo "$name: go is required" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A module cache of our own (writable, so the trap can remove it), outside any Go module.
info=$(cd "$work" && GOMODCACHE="$work/mod" GOFLAGS=-modcacherw \
  go mod download -json "$module@$version" </dev/null)
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$info"; }
if [[ "$(field Sum)" != "$module_sum" ]]; then
  echo "$name: $module@$version has hash $(field Sum), expected $module_sum" >&2
  exit 1
fi
source_dir="$(field Dir)/$module_dir"
mkdir -p "$target"
for file in "${files[@]}"; do
  install -m 0644 "$source_dir/$file" "$target/$file.tmp"
  mv -f "$target/$file.tmp" "$target/$file"
done
echo "$target"
