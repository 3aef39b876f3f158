"""The two-replica compose stack on PostgreSQL, its config and its Prometheus (no engine needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, REPO, run, tool
from tests.deploy.test_container import (
    COMPOSE,
    CONFIG_PATH,
    CONTAINER_CONFIG,
    DOCKERFILE,
    binds,
    ignore_patterns,
    ignored,
)

COMPOSE_HA = DEPLOY / "compose.ha.yaml"
HA_CONFIG = DEPLOY / "container" / "rising-tide-ha.yaml"
PROMETHEUS_HA = DEPLOY / "prometheus" / "prometheus-ha.yml"
REPLICAS = ["rising-tide-a", "rising-tide-b"]
SECRET_PATH = "/run/secrets/db_password"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    """compose.ha.yaml as parsed (PyYAML resolves the replicas' shared `<<:` anchor)."""
    data: dict[str, Any] = load(COMPOSE_HA)
    return data


def compose_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}


def resolved(tmp_path: Path) -> dict[str, Any]:
    """What docker-compose itself makes of compose.ha.yaml (anchors merged, defaults filled)."""
    result = run(
        [tool("docker-compose"), "-f", str(COMPOSE_HA), "config"], cwd=tmp_path, env=compose_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


def test_docker_compose_accepts_the_ha_stack(tmp_path: Path) -> None:
    """docker-compose config validates deploy/compose.ha.yaml (no engine needed)."""
    result = run(
        [tool("docker-compose"), "-f", str(COMPOSE_HA), "config", "-q"],
        cwd=tmp_path,
        env=compose_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_replicas_wait_for_a_healthy_postgres(tmp_path: Path) -> None:
    """Two Rising Tide replicas, each named, on the HA config, start once PostgreSQL is healthy."""
    services = resolved(tmp_path)["services"]
    assert set(services) == {*REPLICAS, "postgres", "prometheus", "grafana"}
    ports = set()
    for name in REPLICAS:
        replica = services[name]
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert replica["environment"]["RISINGTIDE_REPLICA"] == name
        build = replica["build"]
        assert Path(build["context"], build["dockerfile"]).resolve() == DOCKERFILE
        mounts = {v.split(":")[0]: v.split(":")[1] for v in replica["volumes"]}
        assert mounts == {str(HA_CONFIG): CONFIG_PATH}, "config only: the state is in PostgreSQL"
        assert [s["source"] for s in replica["secrets"]] == ["db_password"]
        (port,) = replica["ports"]
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        ports.add(port.split(":")[1])
    assert len(ports) == len(REPLICAS), "each replica's board on its own host port"


def test_postgres_is_the_official_debian_image_with_its_password_from_the_secret(
    stack: dict[str, Any],
) -> None:
    """postgres:15 keeps its data on a named volume, reads the secret, and checks pg_isready."""
    postgres = stack["services"]["postgres"]
    assert postgres["image"] == "postgres:15"  # the Debian one; alpine's tag says so
    env = postgres["environment"]
    assert env["POSTGRES_PASSWORD_FILE"] == SECRET_PATH
    assert "POSTGRES_PASSWORD" not in env, "the password only ever in the secret file"
    assert postgres["secrets"] == ["db_password"]
    (volume,) = postgres["volumes"]
    name, path = volume.split(":")
    assert name in stack["volumes"] and path == "/var/lib/postgresql/data"
    check = postgres["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"]
    # over TCP, with the user and database the replicas use
    assert check[check.index("-h") + 1] == "127.0.0.1"
    assert check[check.index("-U") + 1] == env["POSTGRES_USER"]
    assert check[check.index("-d") + 1] == env["POSTGRES_DB"]
    assert "ports" not in postgres, "PostgreSQL is reached inside the stack only"


def test_the_secret_file_is_kept_out_of_git_and_the_image(stack: dict[str, Any]) -> None:
    """The password file the secret names is ignored by git and left out of the build context."""
    source = stack["secrets"]["db_password"]["file"]
    assert source == "./secrets/db_password"
    path = (DEPLOY / source).resolve()
    result = run(["git", "check-ignore", "-q", str(path)], cwd=REPO)
    assert result.returncode == 0, f"{source} is not git-ignored"
    assert ignored(path.relative_to(REPO).as_posix(), ignore_patterns())


def test_ha_config_points_every_replica_at_the_postgres_service(stack: dict[str, Any]) -> None:
    """server.database names the postgres service, its user and database, the secret's file."""
    server = load(HA_CONFIG)["server"]
    reference = "${file:" + SECRET_PATH + "}"
    assert reference in server["database"]
    # (the reference has slashes of its own: read the URL as the daemon will, substituted)
    url = urlsplit(server["database"].replace(reference, "PASSWORD"))
    env = stack["services"]["postgres"]["environment"]
    assert url.scheme == "postgresql"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.username == env["POSTGRES_USER"] and url.path == "/" + env["POSTGRES_DB"]
    assert url.password == "PASSWORD"
    assert "state_file" not in server, "the replicas' state is in PostgreSQL"
    assert server["listen"] == "0.0.0.0:9470"
    assert server["partitions"] == 1 and server["lease"] == "10s"


def test_ha_config_is_the_container_config_apart_from_the_server_block() -> None:
    """rising-tide-ha.yaml is the container (demo) config with another server block."""
    ha = load(HA_CONFIG)
    single = load(CONTAINER_CONFIG)
    ha_server, single_server = ha.pop("server"), single.pop("server")
    assert ha == single, "copy deploy/container/rising-tide.yaml's changes into the HA config"
    for key in ("listen", "log_format", "evaluate_every"):
        assert ha_server[key] == single_server[key], key


def test_ha_config_passes_check(tmp_path: Path) -> None:
    """risingtide check accepts the HA config (its secret file pointed at a temporary one)."""
    # (Needs server.database, server.partitions and server.lease in the config schema.)
    secret = tmp_path / "db_password"
    secret.write_text("correct-horse-battery\n", encoding="utf-8")
    config = tmp_path / "rising-tide-ha.yaml"
    text = HA_CONFIG.read_text(encoding="utf-8")
    assert SECRET_PATH in text
    config.write_text(text.replace(SECRET_PATH, str(secret)), encoding="utf-8")
    result = run([sys.executable, "-m", "risingtide", "check", "-c", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "correct-horse-battery" not in result.stdout + result.stderr


def test_prometheus_scrapes_both_replicas_under_one_job(stack: dict[str, Any]) -> None:
    """Prometheus runs prometheus-ha.yml, which scrapes every replica as job rising-tide."""
    prometheus = stack["services"]["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus-ha.yml" in prometheus["command"]
    assert binds(prometheus) == {"./prometheus": "/etc/prometheus"}
    assert set(prometheus["depends_on"]) == set(REPLICAS)
    scrape = load(PROMETHEUS_HA)
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "rising-tide"]
    targets = [t for c in job["static_configs"] for t in c["targets"]]
    assert sorted(targets) == [f"{name}:9470" for name in REPLICAS]
    assert scrape["rule_files"] == ["rules.yml"]
    result = run([tool("promtool"), "check", "config", str(PROMETHEUS_HA)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_and_prometheus_are_the_single_stacks(stack: dict[str, Any]) -> None:
    """Grafana is configured as in compose.yaml, and both stacks pin the same Prometheus."""
    single = load(COMPOSE)["services"]
    services = stack["services"]
    assert services["grafana"] == single["grafana"]
    assert services["prometheus"]["image"] == single["prometheus"]["image"]
    for name, service in services.items():
        for host in binds(service):
            assert (DEPLOY / host).exists(), f"{name} mounts missing {host}"
        named = [v.split(":")[0] for v in service.get("volumes", []) if not v.startswith(".")]
        assert set(named) <= set(stack["volumes"]), name
