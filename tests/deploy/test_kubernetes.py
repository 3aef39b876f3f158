"""Kubernetes manifests: schema-valid, one Recreate replica, probes, state on a PVC, no secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, run, tool
from tests.deploy.test_container import CONFIG_PATH, CONTAINER_CONFIG, STATE_VOLUME, stages

KUBE = DEPLOY / "kubernetes"
SECRETISH = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|WEBHOOK|CREDENTIAL", re.IGNORECASE)


def documents() -> dict[str, dict[str, Any]]:
    """Every manifest by kind (one of each), parsed with safe_load_all."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                assert doc["kind"] not in found, f"two {doc['kind']}s"
                found[doc["kind"]] = doc | {"_file": path.name}
    return found


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return documents()


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    """kubernetes-validate --strict accepts every built-in resource (unknown fields are errors)."""
    files = [str(p) for p in sorted(KUBE.glob("*.yaml"))]
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", *files])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


def test_kustomization_lists_files_that_exist(docs: dict[str, dict[str, Any]]) -> None:
    """Every resource in kustomization.yaml exists; the ServiceMonitor is there to opt into."""
    resources = docs["Kustomization"]["resources"]
    assert all((KUBE / r).is_file() for r in resources)
    core = ["Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"]
    assert {docs[k]["_file"] for k in core} <= set(resources)
    assert (KUBE / docs["ServiceMonitor"]["_file"]).is_file()


def test_one_replica_recreated_never_rolled(docs: dict[str, dict[str, Any]]) -> None:
    """One replica with strategy Recreate, since two daemons cannot share the state file."""
    spec = docs["Deployment"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_runs_non_root_read_only_as_the_images_user(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    """The pod runs as the image's non-root uid, read-only, with no capabilities or escalation."""
    image_user = dict(stages()[-1])["USER"].split(":")[0]
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True and str(ctx["runAsUser"]) == image_user
    assert str(ctx["fsGroup"]) == image_user
    c = container["securityContext"]
    assert c["readOnlyRootFilesystem"] is True and c["allowPrivilegeEscalation"] is False
    assert c["capabilities"]["drop"] == ["ALL"]
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_probes_use_healthz_and_readyz_on_the_daemon_port(container: dict[str, Any]) -> None:
    """Liveness asks /healthz and readiness /readyz, on the port the daemon listens on."""
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == 9470
    listen = container["args"][container["args"].index("--listen") + 1]
    assert listen == "0.0.0.0:9470"


def test_state_on_the_pvc_and_config_from_the_configmap(
    docs: dict[str, dict[str, Any]], pod: dict[str, Any], container: dict[str, Any]
) -> None:
    """The PVC is mounted at the state volume; the ConfigMap holds the config the daemon reads."""
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    by_path = {m["mountPath"]: volumes[name] for name, m in mounts.items()}
    pvc = docs["PersistentVolumeClaim"]
    assert by_path[STATE_VOLUME]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    config_dir, config_file = CONFIG_PATH.rsplit("/", 1)
    cm = docs["ConfigMap"]
    assert by_path[config_dir]["configMap"]["name"] == cm["metadata"]["name"]
    assert container["args"][container["args"].index("-c") + 1] == CONFIG_PATH
    # the shipped ConfigMap is the container config, byte for byte (the demo; replace both)
    assert cm["data"][config_file] == CONTAINER_CONFIG.read_text(encoding="utf-8")
    assert "/tmp" in by_path and "emptyDir" in by_path["/tmp"]


def test_no_secret_values_in_the_manifests(
    docs: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    """Secrets come only from Secret references; no manifest carries a Secret or a secret value."""
    assert "Secret" not in docs
    for env in container.get("env", []):
        if "value" in env:
            assert not SECRETISH.search(env["name"]), env["name"]
        else:
            assert set(env["valueFrom"]) <= {"secretKeyRef", "configMapKeyRef", "fieldRef"}
    sources = container["envFrom"]
    assert sources and all(set(s) == {"secretRef"} for s in sources)
    text = "\n".join(p.read_text(encoding="utf-8") for p in KUBE.glob("*.yaml"))
    assert not re.search(
        r"^\s*(data|stringData):\s*$\n\s+\S*(secret|token|password)", text, re.I | re.M
    )


def test_scraping_by_annotation_and_by_servicemonitor(docs: dict[str, dict[str, Any]]) -> None:
    """The pod has scrape annotations; the Service and ServiceMonitor select it by its labels."""
    template = docs["Deployment"]["spec"]["template"]
    notes = template["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert notes["prometheus.io/port"] == "9470" and notes["prometheus.io/path"] == "/metrics"
    labels = template["metadata"]["labels"]
    service = docs["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    monitor = docs["ServiceMonitor"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {
        p["name"] for p in service["spec"]["ports"]
    }
    assert service["metadata"]["name"] == "rising-tide", "the alerts' job label comes from it"


def test_manifests_parse_as_plain_yaml() -> None:
    """Every manifest file parses with PyYAML's safe_load_all."""
    for path in Path(KUBE).glob("*.yaml"):
        assert list(yaml.safe_load_all(path.read_text(encoding="utf-8"))), path.name
