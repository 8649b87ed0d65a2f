"""The Helm chart, checked with real helm 3 and helm 4 binaries and no cluster: lint, render,
validate every manifest (core kinds with kubernetes-validate, KEDA and prometheus-operator kinds
against their CRD schemas), schema rejections, equality with keda/ and what an upgrade may
change."""

from __future__ import annotations

import copy
import posixpath
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.helmchart import (
    CHART,
    DEFAULT,
    HELM_VERSIONS,
    HOOK,
    NAMESPACE,
    RELEASE,
    ROOT,
    SCENARIOS,
    Manifest,
    find,
    helm_binaries,
    is_hook,
    pod_spec,
    render,
    run_helm,
    template,
    values_args,
)
from tests.support.keda_crds import crd_validator
from tests.support.prometheus_crds import prometheus_crd_validator
from votecontract import names

pytestmark = pytest.mark.helm

# The chart's kubeVersion floor (Chart.yaml) and the newest release kubernetes-validate knows.
KUBE_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
# Fixed passwords, so that two renderings differ only by what a test changes.
PASSWORDS = ("--set", "redis.password=redis-pw", "--set", "postgres.password=postgres-pw")
UPGRADE = (
    *("--set", "image.tag=0.2.0", "--set", "config.voteOptions={cats,dogs,birds}"),
    *("--set", "processor.batchSize=1000", "--set", "processor.maxReplicaCount=20"),
    *("--set", "ingest.replicaCount=3", "--set", "ingress.enabled=true"),
    *("--set", "networkPolicy.enabled=true", "--set", "redis.resources.limits.memory=1Gi"),
)


@pytest.fixture(scope="module")
def renders() -> dict[tuple[str, str], list[Manifest]]:
    """Every scenario rendered by every helm version, once for the module."""
    return {
        (version, scenario): render(version, *values_args(scenario))
        for version in HELM_VERSIONS
        for scenario in SCENARIOS
    }


def validate(manifest: Manifest, kube_version: str) -> None:
    if manifest["apiVersion"].startswith("keda.sh/"):
        crd_validator(manifest["kind"], manifest["apiVersion"]).validate(manifest)
    elif manifest["apiVersion"].startswith("monitoring.coreos.com/"):
        prometheus_crd_validator(manifest["kind"], manifest["apiVersion"]).validate(manifest)
    else:
        kubernetes_validate.validate(manifest, kube_version, strict=True)


def masked(manifests: list[Manifest]) -> list[Manifest]:
    """Manifests without generated passwords (and the checksums that include them)."""
    result = copy.deepcopy(manifests)
    for doc in result:
        if doc["kind"] == "Secret":
            doc["stringData"] = dict.fromkeys(doc.get("stringData", {}), "*")
        if doc["kind"] == "Deployment":
            doc["spec"]["template"]["metadata"]["annotations"].pop("checksum/secret")
    return result


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_lint_strict(version: str, scenario: str) -> None:
    result = run_helm(version, "lint", "--strict", str(CHART), *values_args(scenario))
    assert result.returncode == 0, result.stdout + result.stderr


def test_binaries_are_the_expected_helm_versions() -> None:
    for version, binary in helm_binaries().items():
        assert run_helm(version, "version", "--short").stdout.startswith(f"v{version}"), binary
    assert set(helm_binaries()) == set(HELM_VERSIONS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_3_and_4_render_the_same(renders: dict[Any, list[Manifest]], scenario: str) -> None:
    old, new = (masked(renders[version, scenario]) for version in HELM_VERSIONS)
    assert old == new


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_manifest_validates(
    renders: dict[Any, list[Manifest]], scenario: str, kube_version: str
) -> None:
    for version in HELM_VERSIONS:
        for manifest in renders[version, scenario]:
            validate(manifest, kube_version)


def test_validators_reject_unknown_fields(renders: dict[Any, list[Manifest]]) -> None:
    manifests = renders[HELM_VERSIONS[0], DEFAULT]
    for kind in ("Deployment", "ScaledJob", "TriggerAuthentication"):
        broken = copy.deepcopy(find(manifests, kind))
        broken["spec"]["replicaz"] = 1
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, KUBE_VERSIONS[0])


def _keda_view(manifest: Manifest) -> Manifest:
    """A manifest as keda/ writes it: no Helm labels or annotations, the release's names mapped
    to keda/'s, env as a mapping, and no serviceAccountName (the chart runs pods under its own
    ServiceAccount; keda/ uses the namespace's default one)."""
    renamed = {
        "vote-pipeline-processor": "vote-processor",
        "vote-pipeline-processor-sweeper": "vote-processor-sweeper",
        "vote-pipeline-processor-redis": "vote-processor-redis",
        f"vote-pipeline-redis.{NAMESPACE}.svc.cluster.local:6379": (
            f"redis.{NAMESPACE}.svc.cluster.local:6379"
        ),
    }

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            skipped = {"labels", "annotations", "serviceAccountName"}
            view = {key: walk(value) for key, value in node.items() if key not in skipped}
            if isinstance(view.get("env"), list):
                view["env"] = {item.pop("name"): item for item in view["env"]}
            return view
        if isinstance(node, list):
            return [walk(item) for item in node]
        return renamed.get(node, node) if isinstance(node, str) else node

    view: Manifest = walk(manifest)
    return view


@pytest.mark.parametrize("version", HELM_VERSIONS)
@pytest.mark.parametrize(
    ("kind", "filename"),
    [
        ("ScaledJob", "scaledjob.yaml"),
        ("TriggerAuthentication", "triggerauthentication.yaml"),
        ("CronJob", "sweeper-cronjob.yaml"),
    ],
)
def test_default_rendering_equals_keda_manifests(
    renders: dict[Any, list[Manifest]], version: str, kind: str, filename: str
) -> None:
    expected = _keda_view(yaml.safe_load((ROOT / "keda" / filename).read_text()))
    rendered = _keda_view(find(renders[version, DEFAULT], kind))
    assert rendered == expected


SCHEMA_ERRORS = {
    "wrong type": (["--set-string", "processor.batchSize=many"], "batchSize"),
    "unknown key": (["--set", "procesor.batchSize=5"], "procesor"),
    "unknown nested key": (["--set", "ingest.replicas=3"], "replicas"),
    "missing setting": (["--set", "config.voteGroup=null"], "voteGroup"),
    "bad enum": (["--set", "config.logFormat=xml"], "logFormat"),
    "bad redis url": (["--set", "externalRedis.url=http://x"], "url"),
}


@pytest.mark.parametrize("case", SCHEMA_ERRORS)
@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_schema_rejects_bad_values(version: str, case: str) -> None:
    args, where = SCHEMA_ERRORS[case]
    result = template(version, *args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert where in result.stderr


RENDER_ERRORS = {
    "no redis": (["--set", "redis.enabled=false"], "No Redis configured"),
    "no postgres": (["--set", "postgres.enabled=false"], "No PostgreSQL configured"),
    "secret without address": (
        ["--set", "existingSecret=creds", "--set", "redis.enabled=false"],
        "externalRedis.address",
    ),
    "bundled and external": (
        ["--set", "externalPostgres.url=postgresql://db/votes"],
        "set postgres.enabled=false",
    ),
    "kubernetes too old": (["--kube-version", "1.27.0"], "chart requires kubeVersion"),
    "deadline too short": (
        ["--set", "processor.activeDeadlineSeconds=300"],
        "processor.activeDeadlineSeconds (300) must exceed",
    ),
    "shutdown grace reaches SIGKILL": (
        ["--set", "processor.terminationGracePeriodSeconds=10"],
        "processor.shutdownGraceS (10) must be below processor.terminationGracePeriodSeconds",
    ),
    "migration waits past its deadline": (
        ["--set", "migration.waitForDatabaseSeconds=600"],
        "must be below migration.activeDeadlineSeconds",
    ),
}


@pytest.mark.parametrize("case", RENDER_ERRORS)
@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_rendering_fails_with_a_clear_message(version: str, case: str) -> None:
    args, message = RENDER_ERRORS[case]
    result = template(version, *args)
    assert result.returncode != 0
    assert message in result.stderr


def _immutable(manifest: Manifest) -> Any:
    spec = manifest.get("spec", {})
    fields = {
        "Deployment": ("selector",),
        "StatefulSet": ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"),
        "Service": ("clusterIP", "type"),
        "Job": ("selector",),
    }.get(manifest["kind"], ())
    return {field: spec.get(field) for field in fields}


@pytest.fixture(scope="module", params=HELM_VERSIONS)
def upgrade(request: pytest.FixtureRequest) -> tuple[list[Manifest], list[Manifest]]:
    """The default rendering, then a changed configuration, as one helm version renders them."""
    version: str = request.param
    return render(version, *PASSWORDS), render(version, *PASSWORDS, *UPGRADE)


def test_upgrade_changes_no_immutable_field(upgrade: tuple[list[Manifest], ...]) -> None:
    before, after = upgrade
    current = {(doc["kind"], doc["metadata"]["name"]): doc for doc in after if not is_hook(doc)}
    for doc in before:
        if is_hook(doc):
            continue
        key = (doc["kind"], doc["metadata"]["name"])
        assert key in current, f"{key} would be deleted by the upgrade"
        assert _immutable(current[key]) == _immutable(doc), key


def test_upgrade_keeps_jobs_in_flight(upgrade: tuple[list[Manifest], ...]) -> None:
    before, after = upgrade
    for manifests in upgrade:
        assert find(manifests, "ScaledJob")["spec"]["rollout"] == {"strategy": "gradual"}
    assert find(before, "ScaledJob")["spec"] != find(after, "ScaledJob")["spec"]


def test_migration_runs_before_new_ingest_pods(upgrade: tuple[list[Manifest], ...]) -> None:
    after = upgrade[1]
    job = find(after, "Job")
    annotations = job["metadata"]["annotations"]
    assert "pre-upgrade" in annotations[HOOK].split(",")
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert pod_spec(job)["containers"][0]["command"] == ["python", "-m", "processor", "migrate"]
    # It waits (bounded, within the Job's deadline) for a database that is still starting.
    job_env = {item["name"]: item for item in pod_spec(job)["containers"][0]["env"]}
    wait_s = int(job_env[names.ENV_MIGRATE_WAIT_S]["value"])
    assert 0 < wait_s < job["spec"]["activeDeadlineSeconds"]
    # Pre-upgrade hooks all finish before Helm applies any release resource: ingest is one.
    deployment = find(after, "Deployment")
    assert not is_hook(deployment)
    # ...and the new settings do roll the ingest pods (after the hook).
    old_pods, new_pods = (find(docs, "Deployment")["spec"]["template"] for docs in upgrade)
    assert old_pods["metadata"]["annotations"] != new_pods["metadata"]["annotations"]
    # The credentials the Job reads are a hook of a lower weight, created before it.
    secret = find(after, "Secret", "vote-pipeline-migration")
    weight = int(secret["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert weight < int(annotations["helm.sh/hook-weight"])
    assert secret["metadata"]["annotations"][HOOK] == annotations[HOOK]
    env = {item["name"]: item for item in pod_spec(job)["containers"][0]["env"]}
    ref = env[names.ENV_DATABASE_URL]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"]
    release_secret = find(after, "Secret", "vote-pipeline")
    assert secret["stringData"]["DATABASE_URL"] == release_secret["stringData"]["DATABASE_URL"]


def test_first_install_migrates_before_or_after_what_it_needs_exists(
    renders: dict[Any, list[Manifest]],
) -> None:
    """pre-install needs an external database and the operator's own ServiceAccount; the
    bundled PostgreSQL and the chart's ServiceAccount are created after pre-install hooks."""
    version = HELM_VERSIONS[0]
    hooks = {
        scenario: find(renders[version, scenario], "Job")["metadata"]["annotations"][HOOK]
        for scenario in (DEFAULT, "external-values.yaml", "existing-secret-values.yaml")
    }
    assert hooks == {
        DEFAULT: "post-install,pre-upgrade",
        "external-values.yaml": "post-install,pre-upgrade",
        "existing-secret-values.yaml": "pre-install,pre-upgrade",
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_is_locked_down(renders: dict[Any, list[Manifest]], scenario: str) -> None:
    workloads = ("Deployment", "StatefulSet", "Job", "CronJob", "ScaledJob", "Pod")
    manifests = renders[HELM_VERSIONS[0], scenario]
    for manifest in (doc for doc in manifests if doc["kind"] in workloads):
        spec = pod_spec(manifest)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert "limits" in container["resources"]
    for account in (doc for doc in manifests if doc["kind"] == "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_processor_jobs_keep_their_contract(
    renders: dict[Any, list[Manifest]], scenario: str
) -> None:
    # One ScaledJob per shard (config.voteShards): each keeps it.
    for scaledjob in find_all(renders[HELM_VERSIONS[0], scenario], "ScaledJob"):
        check_processor_contract(scaledjob)


def check_processor_contract(scaledjob: Manifest) -> None:
    spec, target = scaledjob["spec"], scaledjob["spec"]["jobTargetRef"]
    assert spec["scalingStrategy"]["strategy"] == "accurate"
    assert spec["scalingStrategy"]["pendingPodConditions"] == ["Ready"]
    assert set(spec["triggers"][0]["metadata"]) >= {"consumerGroup", "lagCount"}
    container = pod_spec(scaledjob)["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    grace = pod_spec(scaledjob)["terminationGracePeriodSeconds"]
    assert target["activeDeadlineSeconds"] > int(env[names.ENV_MAX_RUNTIME_S]["value"]) + grace
    # The processor's own grace ends before the kubelet's SIGKILL, whatever the values say.
    assert 0 < float(env[names.ENV_SHUTDOWN_GRACE_S]["value"]) < grace
    assert env[names.ENV_JOB_NAME]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/job-name']"
    )
    ready_file = env[names.ENV_READY_FILE]["value"]
    assert container["readinessProbe"]["exec"]["command"] == ["test", "-f", ready_file]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec(scaledjob)["volumes"]}
    assert "emptyDir" in volumes[mounts[posixpath.dirname(ready_file)]]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sweeper_runs_the_scaledjobs_pod_on_a_schedule(
    renders: dict[Any, list[Manifest]], scenario: str
) -> None:
    manifests = renders[HELM_VERSIONS[0], scenario]
    # One sweeper per shard, each running its shard's ScaledJob pod.
    pairs = zip(find_all(manifests, "ScaledJob"), find_all(manifests, "CronJob"), strict=True)
    for scaledjob, sweeper in pairs:
        job = sweeper["spec"]["jobTemplate"]["spec"]
        assert job["template"] == scaledjob["spec"]["jobTargetRef"]["template"]
        deadline = scaledjob["spec"]["jobTargetRef"]["activeDeadlineSeconds"]
        assert job["activeDeadlineSeconds"] == deadline
        assert sweeper["spec"]["concurrencyPolicy"] == "Forbid"


def find_all(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in manifests if doc["kind"] == kind]


def test_sweeper_can_be_turned_off() -> None:
    manifests = render(HELM_VERSIONS[0], "--set", "processor.sweeper.enabled=false")
    assert "CronJob" not in {doc["kind"] for doc in manifests}
    assert find(manifests, "ScaledJob")


def test_bundled_redis_is_durable_and_protected(renders: dict[Any, list[Manifest]]) -> None:
    manifests = renders[HELM_VERSIONS[0], DEFAULT]
    config = find(manifests, "ConfigMap", "vote-pipeline-redis")["data"]["redis.conf"].split("\n")
    # What ACK_DURABILITY=fsync, the chart's default, checks at start-up (ingest/durability.py).
    durable = {"appendonly yes", "appendfsync always", "no-appendfsync-on-rewrite no"}
    assert {*durable, "maxmemory-policy noeviction"} <= set(config)
    ingest_config = find(manifests, "ConfigMap", "vote-pipeline")["data"]
    assert ingest_config["ACK_DURABILITY"] == "fsync"
    statefulset = find(manifests, "StatefulSet", "vote-pipeline-redis")
    assert "--aclfile" in pod_spec(statefulset)["containers"][0]["command"][-1]
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    secret = find(manifests, "Secret", "vote-pipeline")["stringData"]
    for role in ("ingest", "processor"):
        own = find(manifests, "Secret", f"vote-pipeline-{role}")["stringData"]
        password = secret[f"REDIS_{role.upper()}_PASSWORD"]
        assert own["REDIS_URL"].startswith(f"redis://{role}:{password}@")
        assert len(password) >= 32
    assert (secret["REDIS_USERNAME"], len(secret["REDIS_PASSWORD"])) == ("keda", 32)


def test_external_redis_url_gives_kedas_connection(renders: dict[Any, list[Manifest]]) -> None:
    manifests = renders[HELM_VERSIONS[0], "external-values.yaml"]
    trigger = find(manifests, "ScaledJob")["spec"]["triggers"][0]["metadata"]
    assert (trigger["address"], trigger["databaseIndex"], trigger["enableTLS"]) == (
        "redis.example.com:6380",
        "2",
        "true",
    )
    secret = find(manifests, "Secret", "vote-pipeline")["stringData"]
    assert (secret["REDIS_USERNAME"], secret["REDIS_PASSWORD"]) == ("keda-and-votes", "s3cret")
    auth = find(manifests, "TriggerAuthentication")["spec"]["secretTargetRef"]
    assert {(ref["parameter"], ref["key"]) for ref in auth} == {
        ("password", "REDIS_PASSWORD"),
        ("username", "REDIS_USERNAME"),
        ("ca", "ca.crt"),
    }
    kinds = {doc["kind"] for doc in manifests}
    assert {"Ingress", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds
    assert "StatefulSet" not in kinds


def test_existing_secret_is_used_and_none_created(renders: dict[Any, list[Manifest]]) -> None:
    manifests = renders[HELM_VERSIONS[0], "existing-secret-values.yaml"]
    assert not [doc for doc in manifests if doc["kind"] == "Secret"]
    auth = find(manifests, "TriggerAuthentication")["spec"]["secretTargetRef"]
    assert {ref["name"] for ref in auth} == {"vote-credentials"}
    for manifest in (doc for doc in manifests if doc["kind"] in ("Deployment", "Job")):
        refs = [
            item["valueFrom"]["secretKeyRef"]["name"]
            for item in pod_spec(manifest)["containers"][0]["env"]
            if "secretKeyRef" in item.get("valueFrom", {})
        ]
        assert refs
        assert set(refs) == {"vote-credentials"}


def test_helm_test_hook_checks_the_service_read_only(renders: dict[Any, list[Manifest]]) -> None:
    pod = find(renders[HELM_VERSIONS[0], DEFAULT], "Pod")
    assert pod["metadata"]["annotations"][HOOK] == "test"
    script, url, options, _timeout = pod["spec"]["containers"][0]["command"][2:]
    assert url == f"http://vote-pipeline.{NAMESPACE}.svc:80"
    assert tuple(options.split(",")) == names.DEFAULT_VOTE_OPTIONS
    # tests/helm/test_helm_test_hook.py runs it against a real ingest.
    assert '"/readyz"' in script
    assert '"/results"' in script


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_notes_tell_how_to_reach_the_service_and_vote(scenario: str) -> None:
    # helm 4 renders NOTES.txt with a client-only dry run; helm 3 would need a cluster.
    result = run_helm(
        HELM_VERSIONS[1],
        *("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client"),
        *("--kubeconfig", "/nonexistent/kubeconfig", *values_args(scenario)),
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "export VOTE_URL=" in notes
    assert '"$VOTE_URL/vote"' in notes
    assert "get scaledjob,jobs -w" in notes
    assert f"helm test --namespace {NAMESPACE} {RELEASE}" in notes


def test_every_value_is_commented() -> None:
    """helm-docs convention: a `# --` comment documents the key below it and all its children."""
    documented: list[int] = []  # indentations of the documented keys enclosing this line
    doc_comment = False  # the comment block right above this line has a `# --`
    for number, line in enumerate((CHART / "values.yaml").read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            doc_comment = stripped.startswith("# --") or (doc_comment and bool(stripped))
            continue
        indent = len(line) - len(line.lstrip())
        documented = [level for level in documented if level < indent]
        if doc_comment:
            documented.append(indent)
        if not stripped.endswith(":") and not stripped.startswith("-"):
            assert documented, f"values.yaml:{number} has no `# --` comment: {line}"
        doc_comment = False


def test_chart_files_follow_helm_create_layout() -> None:
    for path in ("Chart.yaml", "values.yaml", "values.schema.json", ".helmignore"):
        assert (CHART / path).is_file(), path
    for path in ("_helpers.tpl", "NOTES.txt"):
        assert (CHART / "templates" / path).is_file(), path
    assert Path(CHART / "templates" / "tests").is_dir()
