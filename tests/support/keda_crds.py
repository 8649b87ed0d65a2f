"""KEDA's CRD schemas (v2.20.2, from the workplace's `shared/keda-crds/`) as validators.

The CRDs are not vendored: they are looked up in `$KEDA_CRDS_DIR`, else in `shared/keda-crds`
beside the repository (where CI and the developers' machines have them).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.crdschema import crd_schema_validator
from tests.support.paths import ROOT

CRD_FILES = {
    "ScaledJob": "keda.sh_scaledjobs.yaml",
    "ScaledObject": "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml",
    "ClusterTriggerAuthentication": "keda.sh_clustertriggerauthentications.yaml",
}
# The C loader parses the 9000-line ScaledJob CRD ten times faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def crds_dir() -> Path:
    candidates = [Path(os.environ["KEDA_CRDS_DIR"])] if os.environ.get("KEDA_CRDS_DIR") else []
    candidates.append(ROOT.parent / "shared" / "keda-crds")
    for candidate in candidates:
        if (candidate / CRD_FILES["ScaledJob"]).is_file():
            return candidate
    where = ", ".join(str(c) for c in candidates)
    pytest.fail(f"KEDA CRD schemas not found (looked in {where}); set KEDA_CRDS_DIR")


@functools.cache
def crd_validator(kind: str, api_version: str) -> jsonschema.Draft7Validator:
    """A validator for a served KEDA kind that, like the API server's strict field
    validation, rejects unknown fields."""
    path = crds_dir() / CRD_FILES[kind]
    crd = yaml.load(path.read_text(), Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    return crd_schema_validator(crd, api_version)
