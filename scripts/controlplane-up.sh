#!/usr/bin/env bash
# Starts a local Kubernetes control plane plus the KEDA operator, built from upstream by
# scripts/build-control-plane.sh: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, keda-operator (outside the cluster, with a kubeconfig).
#
# Rules it keeps:
# - Loopback only: every listener is bound to 127.0.0.1 (ports below, overridable by env).
# - Each `up` is a fresh cluster: the state dir is recreated (new CA, keys, etcd data).
# - Everything it starts is recorded in <state>/pids/<name>.pid, logs in <state>/logs/;
#   scripts/controlplane-down.sh <state> stops exactly those processes.
# - Flags follow controller-runtime's envtest (pkg/internal/testing/controlplane), except that
#   the ServiceAccount admission plugin stays on: the controller-manager runs the service
#   account controllers, so pods get their token volume as on a real cluster.
# - KEDA CRDs come from the KEDA module (build dir); files in KEDA_CRDS_DIR replace those of
#   the same name. The module's full set is always the base: the operator also watches the
#   eventing.keda.sh CRDs and exits after 2 min ("timed out waiting for cache to be synced
#   for Kind *v1alpha1.CloudEventSource") when they are missing.
# - KEDA_LOG_LEVEL (info): debug makes KEDA log every poll's metric, as the cluster tests read it.
#
# Usage: scripts/controlplane-up.sh [STATE_DIR]   (default $CONTROLPLANE_STATE or
#        ${TMPDIR:-/tmp}/vote-pipeline-controlplane). Then: source <state>/env; kubectl get ns
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${1:-${CONTROLPLANE_STATE:-${TMPDIR:-/tmp}/vote-pipeline-controlplane}}
etcd_port=${CP_ETCD_PORT:-12379}
etcd_peer_port=${CP_ETCD_PEER_PORT:-12380}
api_port=${CP_APISERVER_PORT:-16443}
kcm_port=${CP_KCM_PORT:-20257}
sched_port=${CP_SCHEDULER_PORT:-20259}
keda_metrics_port=${CP_KEDA_METRICS_PORT:-28080}
keda_probe_port=${CP_KEDA_PROBE_PORT:-28081}
keda_grpc_port=${CP_KEDA_GRPC_PORT:-29666}
# Controllers the project needs (Jobs, hook cleanup, Deployments, namespace deletion,
# service accounts and their tokens, orphaned pods, aggregated ClusterRoles); CP_CONTROLLERS
# overrides (names: k8s.io/kubernetes cmd/kube-controller-manager/names).
controllers=${CP_CONTROLLERS:-job-controller,cronjob-controller,ttl-after-finished-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,deployment-controller,replicaset-controller,statefulset-controller,pod-garbage-collector-controller,clusterrole-aggregation-controller}

bin=${CONTROLPLANE_BIN_DIR:-$("$here/build-control-plane.sh" | tail -n 1)}

for f in "$state"/pids/*.pid; do
  if [[ -e $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then
    echo "controlplane-up: already running ($f); run scripts/controlplane-down.sh $state" >&2
    exit 1
  fi
done
# Recreate the state dir, but never wipe a directory that is not one of ours.
if [[ -n $(ls -A "$state" 2>/dev/null) && ! -d $state/pids ]]; then
  echo "controlplane-up: $state is not a control-plane state dir; refusing to wipe it" >&2
  exit 1
fi
rm -rf "$state"
install -d -m 700 "$state" "$state"/{pki,logs,pids,etcd,crds}
crds=$state/crds # what is applied: the module's CRDs, overlaid by KEDA_CRDS_DIR
cp "$bin"/../crds/*.yaml "$crds/"
if [[ -n ${KEDA_CRDS_DIR:-} ]]; then cp "$KEDA_CRDS_DIR"/*.yaml "$crds/"; fi
pki=$state/pki
api=https://127.0.0.1:$api_port
kubectl() { "$bin/kubectl" --kubeconfig "$state/kubeconfig" "$@"; }

# --- PKI: one CA (client + serving), EC P-256 keys, service-account signing key. ---
ossl() { openssl "$@" 2>>"$state/logs/openssl.log"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
  -subj /CN=vote-pipeline-controlplane-ca -keyout "$pki/ca.key" -out "$pki/ca.crt"
# cert <name> <subject> <extendedKeyUsage>: a leaf signed by the CA, valid for loopback.
cert() {
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr"
  ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -days 365 \
    -out "$pki/$1.crt" -extfile <(printf 'extendedKeyUsage=%s\nsubjectAltName=%s\n' "$3" \
      "IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")
}
cert apiserver /CN=kube-apiserver serverAuth
# Every component is its own user in system:masters (RBAC needs no bootstrap for them).
cert admin "/O=system:masters/CN=admin" clientAuth
cert kube-controller-manager "/O=system:masters/CN=system:kube-controller-manager" clientAuth
cert kube-scheduler "/O=system:masters/CN=system:kube-scheduler" clientAuth
cert keda-operator "/O=system:masters/CN=keda-operator" clientAuth
# The front proxy (aggregation layer) identity; with --requestheader-* set the apiserver
# publishes the request-header CA that delegated authn in the controller-manager and
# scheduler expects (without it they log "missing content for CA bundle" forever).
cert front-proxy-client /CN=front-proxy-client clientAuth
# KEDA's gRPC metrics service insists on mTLS files ca.crt, tls.crt, tls.key in --cert-dir.
cert keda-grpc /CN=keda-operator serverAuth,clientAuth
mkdir -p "$pki/keda" "$pki/keda-ca" # keda-ca: extra CAs KEDA trusts for scalers (empty)
cp "$pki/ca.crt" "$pki/keda/ca.crt"
cp "$pki/keda-grpc.crt" "$pki/keda/tls.crt"
cp "$pki/keda-grpc.key" "$pki/keda/tls.key"
ossl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key"
ossl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# kubeconfig <file> <cert name>
kubeconfig() {
  local k=(config --kubeconfig "$state/$1")
  "$bin/kubectl" "${k[@]}" set-cluster local --server "$api" --certificate-authority "$pki/ca.crt" --embed-certs >/dev/null
  "$bin/kubectl" "${k[@]}" set-credentials "$2" --client-certificate "$pki/$2.crt" --client-key "$pki/$2.key" --embed-certs >/dev/null
  "$bin/kubectl" "${k[@]}" set-context local --cluster local --user "$2" >/dev/null
  "$bin/kubectl" "${k[@]}" use-context local >/dev/null
}
kubeconfig kubeconfig admin
kubeconfig kube-controller-manager.kubeconfig kube-controller-manager
kubeconfig kube-scheduler.kubeconfig kube-scheduler
kubeconfig keda-operator.kubeconfig keda-operator

# start <name> <command...>: detached (own session), pid and log recorded.
start() {
  local name=$1
  shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$state/pids/$name.pid"
}
# wait_for <name> <seconds> <command...>: poll until the command succeeds; on timeout show
# the component's log, stop everything started so far, fail.
wait_for() {
  local name=$1 limit=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$state/pids/$name.pid")" 2>/dev/null || ((SECONDS - t0 > limit)); then
      echo "controlplane-up: $name did not come up; last log lines:" >&2
      tail -n 30 "$state/logs/$name.log" >&2
      "$here/controlplane-down.sh" "$state" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "controlplane-up: $name ready after $((SECONDS - t0))s" >&2
}

start etcd "$bin/etcd" --name default --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "default=http://127.0.0.1:$etcd_peer_port" \
  --unsafe-no-fsync=true --log-level warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

# --endpoint-reconciler-type none: the default would publish 127.0.0.1 in the `kubernetes`
# Endpoints, which validation rejects (loopback); nothing here dials that Service anyway.
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
  --requestheader-client-ca-file "$pki/ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
  --service-account-issuer "$api" --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
  --endpoint-reconciler-type none
wait_for kube-apiserver 90 kubectl get --raw /readyz

# KEDA's CRDs and namespace before any controller starts, so the garbage collector's first
# discovery already maps keda.sh owners (else it logs "unable to get REST mapping" until its
# 30 s resync). Server-side: the ScaledJob CRD is too large for client-side apply's annotation.
kubectl apply --server-side -f "$crds" >"$state/logs/crds.log"
kubectl wait --for condition=Established --timeout 60s -f "$crds" >>"$state/logs/crds.log"
kubectl create namespace keda >/dev/null

# component_flags <name> <port>: shared by the controller-manager and the scheduler
# (own kubeconfig for API and delegated authn/authz, loopback secure port, no leader election).
component_flags() {
  flags=(--kubeconfig "$state/$1.kubeconfig" --authentication-kubeconfig "$state/$1.kubeconfig"
    --authorization-kubeconfig "$state/$1.kubeconfig" --bind-address 127.0.0.1
    --secure-port "$2" --cert-dir "$state/$1" --leader-elect=false)
}
component_flags kube-controller-manager "$kcm_port"
start kube-controller-manager "$bin/kube-controller-manager" "${flags[@]}" \
  --controllers "$controllers" --use-service-account-credentials=false \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt"
component_flags kube-scheduler "$sched_port"
start kube-scheduler "$bin/kube-scheduler" "${flags[@]}"
wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$kcm_port/healthz"
wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$sched_port/healthz"

# Outside a cluster KEDA needs: WATCH_NAMESPACE set ("" = all), its namespace from env (no
# service-account mount to read it from), and every listener moved to loopback.
start keda-operator env KUBECONFIG="$state/keda-operator.kubeconfig" WATCH_NAMESPACE="" \
  KEDA_CLUSTER_OBJECT_NAMESPACE=keda POD_NAMESPACE=keda \
  "$bin/keda-operator" --leader-elect=false --zap-log-level="${KEDA_LOG_LEVEL:-info}" \
  --metrics-bind-address "127.0.0.1:$keda_metrics_port" \
  --health-probe-bind-address "127.0.0.1:$keda_probe_port" \
  --metrics-service-bind-address "127.0.0.1:$keda_grpc_port" \
  --cert-dir "$pki/keda" --ca-dir "$pki/keda-ca"
# Ready = the ScaledJob controller's cache has synced and its workers run (readyz alone
# answers before any controller has started).
wait_for keda-operator 120 grep -q '"Starting workers","controller":"scaledjob"' "$state/logs/keda-operator.log"

# shellcheck disable=SC2016 # $PATH is expanded when the env file is sourced
printf 'export KUBECONFIG=%q CONTROLPLANE_STATE=%q CONTROLPLANE_BIN_DIR=%q\nexport PATH=%q:"$PATH"\n' \
  "$state/kubeconfig" "$state" "$bin" "$bin" >"$state/env"
echo "controlplane-up: up; API $api, state $state (source $state/env)" >&2
