"""The few Kubernetes API calls the agent makes, as JSON over HTTPS with the kubeconfig's
credentials (client certificate or bearer token).

Written here rather than taken from the `kubernetes` package: its current release (37) types
every body as a pydantic model, while the agent reads and patches plain JSON documents, and
needs seven calls. Every request is bounded by `TIMEOUT_S`.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

TIMEOUT_S = 10.0
MERGE_PATCH = "application/merge-patch+json"
HTTP_NOT_FOUND = 404
HTTP_CONFLICT = 409


class KubeApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Credentials:
    server: str
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    token: str | None


def _file(entry: dict[str, Any], key: str, workdir: Path) -> str | None:
    """A kubeconfig path (`key`) or inline base64 data (`key-data`) as a file path."""
    if key in entry:
        return str(entry[key])
    data = entry.get(f"{key}-data")
    if data is None:
        return None
    with tempfile.NamedTemporaryFile(dir=workdir, delete=False, suffix=".pem") as out:
        out.write(base64.b64decode(data))
    return out.name


def read_kubeconfig(path: Path, workdir: Path) -> Credentials:
    """The current context's cluster and user."""
    doc = yaml.safe_load(path.read_text())
    context_name = doc["current-context"]
    context = next(c["context"] for c in doc["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == context["user"])
    return Credentials(
        server=cluster["server"],
        ca_file=_file(cluster, "certificate-authority", workdir),
        cert_file=_file(user, "client-certificate", workdir),
        key_file=_file(user, "client-key", workdir),
        token=user.get("token"),
    )


class KubeApi:
    def __init__(self, credentials: Credentials) -> None:
        context = ssl.create_default_context(cafile=credentials.ca_file)
        if credentials.cert_file:
            context.load_cert_chain(credentials.cert_file, credentials.key_file)
        headers = {"Authorization": f"Bearer {credentials.token}"} if credentials.token else {}
        self.http = httpx.Client(
            base_url=credentials.server, verify=context, headers=headers, timeout=TIMEOUT_S
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self.http.request(
            method, path, json=body, params=params, headers={"Content-Type": content_type}
        )
        if response.status_code >= 400:
            raise KubeApiError(response.status_code, response.text[:500])
        result: dict[str, Any] = response.json()
        return result

    def get(self, path: str, **params: str) -> dict[str, Any]:
        return self.request("GET", path, params=params or None)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body, content_type=MERGE_PATCH)

    def delete(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("DELETE", path, body)

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return self.get(path)
        except KubeApiError as error:
            if error.status == HTTP_NOT_FOUND:
                return None
            raise
