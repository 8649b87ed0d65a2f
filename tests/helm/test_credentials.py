"""Credentials as KEDA's operator receives them equal what the pipeline's redis-py clients
decode from their URLs, whatever characters a password holds (rendered by helm 3 and 4).

KEDA (v2.20, pkg/scaling/resolver, pkg/scalers/scalersconfig) reads each secretTargetRef's
Secret key as is, trims surrounding whitespace, and hands it to go-redis as the AUTH username
and password; redis-py percent-decodes the URL's userinfo (urllib.parse.unquote)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from redis.connection import parse_url

from tests.support.helmchart import (
    HELM_VERSIONS,
    SCENARIOS,
    Manifest,
    find,
    keda_auth,
    render,
    render_values,
    template,
    template_values,
    values_args,
)

pytestmark = pytest.mark.helm

# Every character RFC 3986 reserves, the percent sign and a space.
RESERVED = "@:/?#[]%!$&'()*+,;= "
PASSWORD = f"pw{RESERVED}end"
USERNAME = f"keda{RESERVED}user"
EXTERNAL = {"redis": {"enabled": False}, "postgres": {"enabled": False}}
DATABASE = {"url": "postgresql://votes:pw@db.example.com:5432/votes"}


def decoded(url: str) -> dict[str, Any]:
    """What redis-py connects with, given this URL."""
    return parse_url(url)


def component_url(manifests: list[Manifest], role: str) -> str:
    url: str = find(manifests, "Secret", f"vote-pipeline-{role}")["stringData"]["REDIS_URL"]
    return url


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_keda_gets_exactly_what_redis_py_decodes_from_the_url(version: str) -> None:
    url = f"rediss://{quote(USERNAME, safe='')}:{quote(PASSWORD, safe='')}@redis.example.com:6380/2"
    manifests = render_values(
        version, {**EXTERNAL, "externalRedis": {"url": url}, "externalPostgres": DATABASE}
    )
    for role in ("ingest", "processor"):
        client = decoded(component_url(manifests, role))
        assert (client["username"], client["password"]) == (USERNAME, PASSWORD)
    assert keda_auth(manifests) == {"username": USERNAME, "password": PASSWORD}


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_bundled_redis_passwords_given_as_values_arrive_intact(version: str) -> None:
    passwords = {role: f"{role}-{RESERVED}-pw" for role in ("admin", "ingest", "processor", "keda")}
    redis = {
        "password": passwords["admin"],
        "ingestPassword": passwords["ingest"],
        "processorPassword": passwords["processor"],
        "kedaPassword": passwords["keda"],
    }
    manifests = render_values(version, {"redis": redis})
    for role in ("ingest", "processor"):
        client = decoded(component_url(manifests, role))
        assert (client["username"], client["password"]) == (role, passwords[role])
    assert keda_auth(manifests) == {"username": "keda", "password": passwords["keda"]}
    release = find(manifests, "Secret", "vote-pipeline")["stringData"]
    # The bundled Redis hashes these into its ACL file (tests/security/test_chart_security.py).
    assert release["REDIS_ADMIN_PASSWORD"] == passwords["admin"]
    assert release["REDIS_PASSWORD"] == passwords["keda"]


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_with_an_existing_secret_keda_logs_in_as_its_user(version: str) -> None:
    manifests = render(version, *values_args("existing-secret-values.yaml"))
    refs = find(manifests, "TriggerAuthentication")["spec"]["secretTargetRef"]
    assert {(ref["parameter"], ref["name"], ref["key"]) for ref in refs} == {
        ("password", "vote-credentials", "REDIS_PASSWORD"),
        ("username", "vote-credentials", "REDIS_USERNAME"),
    }


@pytest.mark.parametrize("password", [" leading", "trailing ", "tab\tin", "new\nline"], ids=repr)
def test_a_password_keda_cannot_receive_intact_is_refused(password: str) -> None:
    """KEDA trims surrounding whitespace; control characters do not survive a URL either."""
    url = f"redis://keda:{quote(password, safe='')}@redis.example.com:6379/0"
    external = {**EXTERNAL, "externalRedis": {"url": url}, "externalPostgres": DATABASE}
    for values in (external, {"redis": {"kedaPassword": password}}):
        result = template_values(HELM_VERSIONS[0], values)
        assert result.returncode != 0, values
        assert "password" in result.stderr.lower()


def test_a_non_ascii_escape_in_the_url_is_refused_with_the_way_out() -> None:
    url = f"redis://keda:{quote('pässword', safe='')}@redis.example.com:6379/0"
    values = {**EXTERNAL, "externalRedis": {"url": url}, "externalPostgres": DATABASE}
    result = template_values(HELM_VERSIONS[0], values)
    assert result.returncode != 0
    assert "existingSecret" in result.stderr


def auth_refs(manifests: list[Manifest]) -> dict[str, tuple[str, str]]:
    refs = find(manifests, "TriggerAuthentication")["spec"]["secretTargetRef"]
    return {ref["parameter"]: (ref["name"], ref["key"]) for ref in refs}


def trigger(manifests: list[Manifest]) -> dict[str, str]:
    metadata: dict[str, str] = find(manifests, "ScaledJob")["spec"]["triggers"][0]["metadata"]
    return metadata


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_keda_trusts_the_private_ca_of_a_tls_redis(version: str) -> None:
    manifests = render(version, *values_args("external-values.yaml"))
    assert trigger(manifests)["enableTLS"] == "true"
    refs = auth_refs(manifests)
    assert refs["ca"] == ("vote-pipeline-ca", "ca.crt")
    assert not {"cert", "key"} & set(refs)


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_keda_presents_a_client_certificate_when_told_which_keys_hold_it(version: str) -> None:
    keys = ("--set", "tls.keda.certKey=tls.crt", "--set", "tls.keda.keyKey=tls.key")
    manifests = render(version, *values_args("external-values.yaml"), *keys)
    refs = auth_refs(manifests)
    assert (refs["cert"], refs["key"]) == (
        ("vote-pipeline-ca", "tls.crt"),
        ("vote-pipeline-ca", "tls.key"),
    )


def test_a_client_certificate_without_its_key_is_refused() -> None:
    args = (*values_args("external-values.yaml"), "--set", "tls.keda.certKey=tls.crt")
    result = template(HELM_VERSIONS[0], *args)
    assert result.returncode != 0
    assert "tls.keda.keyKey" in result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tls_is_never_set_in_both_the_trigger_and_the_authentication(scenario: str) -> None:
    """KEDA refuses `tls` in the TriggerAuthentication next to the trigger's enableTLS."""
    manifests = render(HELM_VERSIONS[0], *values_args(scenario), "--set", "tls.secretName=ca")
    refs = auth_refs(manifests)
    # One ScaledJob per shard (VOTE_SHARDS), all with the same trigger kind and TLS setting.
    for scaledjob in (doc for doc in manifests if doc["kind"] == "ScaledJob"):
        metadata = scaledjob["spec"]["triggers"][0]["metadata"]
        assert not ("enableTLS" in metadata and "tls" in refs)
        if metadata.get("enableTLS") != "true":
            assert not {"ca", "cert", "key"} & set(refs)
