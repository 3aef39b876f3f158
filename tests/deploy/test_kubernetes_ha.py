"""deploy/kubernetes-ha: two replicas on PostgreSQL, built by kustomize and checked as built."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, run, tool
from tests.deploy.test_compose_ha import HA_CONFIG
from tests.deploy.test_container import CONFIG_PATH, STATE_VOLUME

KUBE = DEPLOY / "kubernetes"
KUBE_HA = DEPLOY / "kubernetes-ha"


def build(directory: Path) -> str:
    """``kubectl kustomize`` of a directory: what ``kubectl apply -k`` would send."""
    result = run([tool("kubectl"), "kustomize", str(directory)])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def by_kind(text: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(text):
        assert doc["kind"] not in found, f"two {doc['kind']}s"
        found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def built() -> str:
    return build(KUBE_HA)


@pytest.fixture(scope="module")
def docs(built: str) -> dict[str, dict[str, Any]]:
    return by_kind(built)


def test_built_manifests_validate_against_the_kubernetes_schemas(
    built: str, tmp_path: Path
) -> None:
    """kubernetes-validate --strict accepts every resource the HA overlay builds."""
    out = tmp_path / "ha.yaml"
    out.write_text(built, encoding="utf-8")
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", str(out)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


def test_overlay_builds_on_the_single_daemon_which_still_builds(
    docs: dict[str, dict[str, Any]],
) -> None:
    """The default kustomization still builds one SQLite daemon; the overlay has no PVC."""
    single = by_kind(build(KUBE))
    assert single["Deployment"]["spec"]["replicas"] == 1
    assert "PersistentVolumeClaim" in single
    assert set(docs) == {"ConfigMap", "Service", "Deployment", "PodDisruptionBudget"}
    assert {d["metadata"]["namespace"] for d in docs.values()} == {
        single["Deployment"]["metadata"]["namespace"]
    }
    # the same image, probes and hardening as the single daemon: only the overlay's changes
    one = single["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    two = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    for key in ("image", "args", "livenessProbe", "readinessProbe", "securityContext"):
        assert two[key] == one[key], key


def test_two_replicas_rolled_one_at_a_time_never_one_fewer(
    docs: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    """2 replicas, RollingUpdate with maxUnavailable 0 and maxSurge 1, probes on the daemon."""
    spec = docs["Deployment"]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }  # fmt: skip
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_disruption_budget_keeps_one_replica(docs: dict[str, dict[str, Any]]) -> None:
    """The PDB keeps 1 available and selects exactly the Deployment's pods."""
    pdb = docs["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] == 1
    deployment = docs["Deployment"]["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    selector = pdb["selector"]["matchLabels"]
    assert selector.items() <= labels.items(), "the PDB must select the replicas' pods"
    assert deployment["selector"]["matchLabels"].items() <= selector.items(), "and no others"


def test_each_replica_is_named_by_its_pod(container: dict[str, Any]) -> None:
    """RISINGTIDE_REPLICA comes from the pod's name through the downward API."""
    env = {e["name"]: e for e in container["env"]}
    assert env["RISINGTIDE_REPLICA"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_database_url_from_a_mounted_secret_and_no_state_volume(
    docs: dict[str, dict[str, Any]], pod: dict[str, Any], container: dict[str, Any]
) -> None:
    """server.database reads the Secret's mounted file; nothing is mounted at the state volume."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert STATE_VOLUME not in mounts
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    config_dir, config_file = CONFIG_PATH.rsplit("/", 1)
    config = yaml.safe_load(docs["ConfigMap"]["data"][config_file])
    assert mounts[config_dir]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    reference = config["server"]["database"]
    assert reference.startswith("${file:") and reference.endswith("}")
    path = reference.removeprefix("${file:").removesuffix("}")
    directory, name = path.rsplit("/", 1)
    secret = mounts[directory]["secret"]
    assert secret["secretName"] == "rising-tide-database"
    assert {i["path"] for i in secret["items"]} == {name}
    assert "Secret" not in docs, "the Secret is made by hand or by the database's operator"


def test_configmap_is_the_ha_container_config_apart_from_the_database(
    docs: dict[str, dict[str, Any]],
) -> None:
    """The overlay's config is rising-tide-ha.yaml with the whole URL from the Secret."""
    config_file = CONFIG_PATH.rsplit("/", 1)[1]
    config = yaml.safe_load(docs["ConfigMap"]["data"][config_file])
    compose = yaml.safe_load(HA_CONFIG.read_text(encoding="utf-8"))
    config["server"].pop("database")
    compose["server"].pop("database")
    assert config == compose, "copy deploy/container/rising-tide-ha.yaml's changes here"


def test_configmap_config_passes_check(docs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """risingtide check accepts the overlay's config (its Secret file pointed at a temp one)."""
    # (Needs server.database, server.partitions and server.lease in the config schema.)
    text = docs["ConfigMap"]["data"][CONFIG_PATH.rsplit("/", 1)[1]]
    path = yaml.safe_load(text)["server"]["database"].removeprefix("${file:").removesuffix("}")
    secret = tmp_path / "url"
    secret.write_text("postgresql://risingtide:pw-in-a-file@db.example:5432/risingtide\n")
    config = tmp_path / "rising-tide.yaml"
    config.write_text(text.replace(path, str(secret)), encoding="utf-8")
    result = run([sys.executable, "-m", "risingtide", "check", "-c", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pw-in-a-file" not in result.stdout + result.stderr


def test_servicemonitor_scrapes_every_replica_by_name(docs: dict[str, dict[str, Any]]) -> None:
    """The opt-in ServiceMonitor selects the Service's pods and names each target by its pod."""
    kustomization = yaml.safe_load((KUBE_HA / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "servicemonitor.yaml" not in kustomization["resources"], "opt in: needs the CRD"
    monitor = yaml.safe_load((KUBE_HA / "servicemonitor.yaml").read_text(encoding="utf-8"))
    assert monitor["kind"] == "ServiceMonitor"
    service = docs["Service"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert service["metadata"]["name"] == "rising-tide", "the alerts' job label comes from it"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert {"sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "instance"} in endpoint[
        "relabelings"
    ]
