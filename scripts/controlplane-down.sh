#!/usr/bin/env bash
# Stops what scripts/controlplane-up.sh started, in reverse order (KEDA first, etcd last).
#
# Rules it keeps:
# - Only the pids recorded in <state>/pids are signalled, and only while the process is
#   still the binary that was started (guards against pid reuse).
# - SIGTERM, up to 10 s grace, then SIGKILL.
# - Logs stay for inspection; --purge also removes the state dir.
#
# Usage: scripts/controlplane-down.sh [STATE_DIR] [--purge]
set -euo pipefail

state=${CONTROLPLANE_STATE:-${TMPDIR:-/tmp}/vote-pipeline-controlplane}
purge=false
for a in "$@"; do
  case $a in
    --purge) purge=true ;;
    *) state=$a ;;
  esac
done

# alive <pid>: running and not a zombie (init may take a moment to reap an exited child).
alive() {
  local st
  st=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
  [[ -n $st && $st != Z ]]
}

for name in keda-operator kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f=$state/pids/$name.pid
  [[ -e $f ]] || continue
  pid=$(cat "$f")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  # (setsid/env: a process caught before it exec'd the component, see controlplane-up.sh)
  if [[ $exe == */"$name" || $exe == */setsid || $exe == */env ]]; then
    t0=$SECONDS
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      echo "controlplane-down: $name ($pid) ignored SIGTERM; killing" >&2
      kill -KILL "$pid"
    fi
    echo "controlplane-down: stopped $name ($pid) in $((SECONDS - t0))s" >&2
  fi
  rm -f "$f"
done
if $purge; then rm -rf "$state"; fi
