#!/usr/bin/env bash
# Fetch the prometheus-operator CRDs (ServiceMonitor, PodMonitor, PrometheusRule) the chart
# tests validate the monitoring manifests against, from the module
# github.com/prometheus-operator/prometheus-operator (example/prometheus-operator-crd/),
# checked against its pinned hash (scripts/fetch-module-files.sh). They land in
# ~/.cache/vote-pipeline/prometheus-operator-crds/<version>/. Prints the directory.
#   PROMETHEUS_CRDS_CACHE_DIR  overrides the cache root.
set -euo pipefail

exec bash "$(dirname "$0")/fetch-module-files.sh" install-prometheus-crds \
  github.com/prometheus-operator/prometheus-operator v0.85.0 \
  "h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s=" \
  example/prometheus-operator-crd \
  "${PROMETHEUS_CRDS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vote-pipeline/prometheus-operator-crds}" \
  monitoring.coreos.com_servicemonitors.yaml \
  monitoring.coreos.com_podmonitors.yaml \
  monitoring.coreos.com_prometheusrules.yaml
