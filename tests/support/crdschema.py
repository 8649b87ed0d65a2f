"""A CustomResourceDefinition's schema as a validator that, like the API server's strict field
validation, rejects unknown fields."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema


def crd_schema_validator(crd: dict[str, Any], api_version: str) -> jsonschema.Draft7Validator:
    """The validator of `api_version` (group/version), which the CRD must serve."""
    group = crd["spec"]["group"]
    for version in crd["spec"]["versions"]:
        if f"{group}/{version['name']}" == api_version and version["served"]:
            schema = _closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            return jsonschema.Draft7Validator(schema)
    kind = crd["spec"]["names"]["kind"]
    raise AssertionError(f"{kind} {api_version} is not served by its CRD")


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    open_ended = "additionalProperties" in schema or schema.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if "properties" in schema and not open_ended:
        schema["additionalProperties"] = False
    for child in _subschemas(schema):
        _closed(child)
    return schema


def _subschemas(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from schema.get("properties", {}).values()
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield schema[key]
