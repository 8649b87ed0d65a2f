#!/usr/bin/env bash
# Fetch the KEDA CRDs (ScaledJob, ScaledObject, TriggerAuthentication,
# ClusterTriggerAuthentication) the chart and keda/ tests validate against, from the module
# github.com/kedacore/keda/v2 (config/crd/bases/) at the version the control plane runs,
# checked against its pinned hash (scripts/fetch-module-files.sh). They land in
# ~/.cache/vote-pipeline/keda-crds/<version>/. Prints the directory.
#   KEDA_CRDS_CACHE_DIR  overrides the cache root.
set -euo pipefail

exec bash "$(dirname "$0")/fetch-module-files.sh" install-keda-crds \
  github.com/kedacore/keda/v2 v2.20.2 "h1:SR60v8uIcelbveS8n/1jcl8tLdBBIbHMxmdOHw8tKqA=" \
  config/crd/bases \
  "${KEDA_CRDS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vote-pipeline/keda-crds}" \
  keda.sh_scaledjobs.yaml \
  keda.sh_scaledobjects.yaml \
  keda.sh_triggerauthentications.yaml \
  keda.sh_clustertriggerauthentications.yaml
