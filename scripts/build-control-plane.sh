#!/usr/bin/env bash
# Builds the local control plane from upstream sources through the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
# (scripts/controlplane/kube) and the KEDA operator (scripts/controlplane/keda),
# and copies KEDA's CRDs out of the KEDA module.
#
# Rules it keeps:
# - Versions are pinned only in the two go.mod files; the cache key is derived from them
#   (plus a hash of go.mod/go.sum), so any change there means a new key and a rebuild.
# - Everything lands outside the clone: $VOTE_PIPELINE_CACHE (default ~/.cache/vote-pipeline),
#   binaries and CRDs in controlplane/<key>/, GOCACHE/GOMODCACHE in go/ (reused by warm runs).
# - A warm run (all outputs present for the key) exits without invoking the Go toolchain.
# - A key directory only ever appears complete: it is assembled in a temp dir and renamed.
#
# Usage: scripts/build-control-plane.sh [--print-dir]
#   Prints the bin dir on its last line; --print-dir prints the key dir instead and never
#   builds (exit 1 if the build is missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kube_mod=$here/controlplane/kube
keda_mod=$here/controlplane/keda
cache=${VOTE_PIPELINE_CACHE:-$HOME/.cache/vote-pipeline}

# modver <go.mod> <module>: the version a go.mod requires (awk, so warm runs need no Go).
modver() { awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$1"; }

k8s_v=$(modver "$kube_mod/go.mod" k8s.io/kubernetes)
etcd_v=$(modver "$kube_mod/go.mod" go.etcd.io/etcd/server/v3)
keda_v=$(modver "$keda_mod/go.mod" github.com/kedacore/keda/v2)
sum=$(cat "$kube_mod"/go.mod "$kube_mod"/go.sum "$keda_mod"/go.mod "$keda_mod"/go.sum |
  sha256sum | cut -c1-8)
key=k8s-${k8s_v}_keda-${keda_v}_etcd-${etcd_v}_${sum}
dir=$cache/controlplane/$key
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl keda-operator)

complete() {
  local b
  for b in "${bins[@]}"; do [[ -x $dir/bin/$b ]] || return 1; done
  compgen -G "$dir/crds/keda.sh_scaledjobs.yaml" >/dev/null
}

if [[ ${1:-} == --print-dir ]]; then
  complete || { echo "control plane $key not built; run $0" >&2; exit 1; }
  echo "$dir"
  exit 0
fi

if complete; then
  echo "control plane $key already built" >&2
  echo "$dir/bin"
  exit 0
fi

export GOCACHE=$cache/go/build GOMODCACHE=$cache/go/mod
export GOFLAGS=-trimpath GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$GOCACHE" "$GOMODCACHE" "$cache/controlplane"
tmp=$(mktemp -d "$cache/controlplane/.build-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir -p "$tmp/bin" "$tmp/crds"

# The version variables upstream's release build stamps (hack/lib/version.sh); without
# them the apiserver reports v0.0.0-master and Helm's kubeVersion checks fail.
minor=${k8s_v#v1.}
minor=${minor%%.*}
kv=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kv+=" -X $p.gitVersion=$k8s_v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  kv+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

# One `go build` for all kube commands (shared packages compile once); -p 2 for 2 cores.
start=$SECONDS
(cd "$kube_mod" && go build -p 2 -ldflags "-s -w$kv" -o "$tmp/bin/" \
  go.etcd.io/etcd/server/v3 \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl)
mv "$tmp/bin/server" "$tmp/bin/etcd" # go names the binary of .../server/v3 "server"
echo "built etcd $etcd_v + kube $k8s_v in $((SECONDS - start))s" >&2

start=$SECONDS
kedaver=github.com/kedacore/keda/v2/version
(cd "$keda_mod" && go build -p 2 -o "$tmp/bin/keda-operator" \
  -ldflags "-s -w -X $kedaver.Version=${keda_v#v} -X $kedaver.GitCommit=$keda_v" \
  github.com/kedacore/keda/v2/cmd/operator)
echo "built keda-operator $keda_v in $((SECONDS - start))s" >&2

# The CRDs come from the KEDA module itself (the module cache holds the exact tag).
keda_src=$(cd "$keda_mod" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)
cp "$keda_src"/config/crd/bases/*.yaml "$tmp/crds/"
chmod u+w "$tmp"/crds/*.yaml

printf 'k8s.io/kubernetes %s\ngo.etcd.io/etcd/server/v3 %s\ngithub.com/kedacore/keda/v2 %s\n%s\n' \
  "$k8s_v" "$etcd_v" "$keda_v" "$(go version)" >"$tmp/VERSIONS"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/bin"
