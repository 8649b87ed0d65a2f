"""KEDA's CRD schemas (v2.20.2, the version the control plane runs) as validators.

The CRDs are not vendored: they come from the KEDA Go module itself, fetched once by
scripts/install-keda-crds.sh into the user's cache (checked against the module's pinned hash);
`$KEDA_CRDS_DIR` overrides them (e.g. the workplace's `shared/keda-crds`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.crdschema import crd_schema_validator
from tests.support.installscripts import installed_dir

CRD_FILES = {
    "ScaledJob": "keda.sh_scaledjobs.yaml",
    "ScaledObject": "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml",
    "ClusterTriggerAuthentication": "keda.sh_clustertriggerauthentications.yaml",
}
# The C loader parses the 9000-line ScaledJob CRD ten times faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def crds_dir() -> Path:
    override = os.environ.get("KEDA_CRDS_DIR")
    if override:
        if not (Path(override) / CRD_FILES["ScaledJob"]).is_file():
            pytest.fail(f"KEDA_CRDS_DIR={override} holds no {CRD_FILES['ScaledJob']}")
        return Path(override)
    return _module_crds()


@functools.cache
def _module_crds() -> Path:
    return installed_dir("install-keda-crds.sh")


@functools.cache
def crd_validator(kind: str, api_version: str) -> jsonschema.Draft7Validator:
    """A validator for a served KEDA kind that, like the API server's strict field
    validation, rejects unknown fields."""
    path = crds_dir() / CRD_FILES[kind]
    crd = yaml.load(path.read_text(), Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    return crd_schema_validator(crd, api_version)
