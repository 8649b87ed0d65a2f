"""The prometheus-operator CRD schemas (ServiceMonitor, PodMonitor, PrometheusRule) as
validators, fetched once by scripts/install-prometheus-crds.sh into the user's cache."""

from __future__ import annotations

import functools
from pathlib import Path

import jsonschema
import yaml

from tests.support.crdschema import crd_schema_validator
from tests.support.installscripts import installed_dir

CRD_FILES = {
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
    "PodMonitor": "monitoring.coreos.com_podmonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def crds_dir() -> Path:
    return installed_dir("install-prometheus-crds.sh")


@functools.cache
def prometheus_crd_validator(kind: str, api_version: str) -> jsonschema.Draft7Validator:
    """A validator for a served prometheus-operator kind that rejects unknown fields."""
    crd = yaml.load((crds_dir() / CRD_FILES[kind]).read_text(), Loader=SAFE_LOADER)  # noqa: S506
    return crd_schema_validator(crd, api_version)
