#!/usr/bin/env bash
# `make cluster-down`: stops the node agent (its pods' processes with it) and the control plane
# that scripts/cluster-up.sh started.
#   CLUSTER_STATE  state directory (default ${TMPDIR:-/tmp}/vote-pipeline-cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
state=${CLUSTER_STATE:-${TMPDIR:-/tmp}/vote-pipeline-cluster}
if [[ -f $state/pids/node-agent.pid ]]; then
  pid=$(cat "$state/pids/node-agent.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$state/pids/node-agent.pid"
fi
bash scripts/controlplane-down.sh "$state" "$@"
