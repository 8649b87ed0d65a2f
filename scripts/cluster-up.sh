#!/usr/bin/env bash
# `make cluster-up`: the real control plane (scripts/controlplane-up.sh: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, the KEDA operator, built from upstream and cached)
# and the project's node agent running the pods bound to its Node as local processes.
# Everything on loopback; stop it with `make cluster-down`.
#   CLUSTER_STATE  state directory (default ${TMPDIR:-/tmp}/vote-pipeline-cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
state=${CLUSTER_STATE:-${TMPDIR:-/tmp}/vote-pipeline-cluster}
py=.venv/bin/python

bash scripts/build-control-plane.sh >/dev/null
KEDA_LOG_LEVEL=${KEDA_LOG_LEVEL:-debug} bash scripts/controlplane-up.sh "$state"
setsid "$py" -m processor.nodeagent --kubeconfig "$state/kubeconfig" --workdir "$state/agent" \
  >"$state/logs/node-agent.log" 2>&1 &
echo $! >"$state/pids/node-agent.pid"
echo "cluster-up: node agent pid $(cat "$state/pids/node-agent.pid"), log $state/logs/node-agent.log" >&2
echo "cluster-up: source $state/env; CLUSTER_STATE=$state make cluster-test uses it" >&2
