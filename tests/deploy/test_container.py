"""The container image recipe, its config, and the compose stack (no Docker engine needed)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEMO_CONFIG, DEPLOY, REPO, Process, free_port, run, tool

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
CONTAINER_CONFIG = DEPLOY / "container" / "rising-tide.yaml"
COMPOSE = DEPLOY / "compose.yaml"
STATE_VOLUME = "/var/lib/rising-tide"
CONFIG_PATH = "/etc/rising-tide/rising-tide.yaml"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        word, _, rest = pending.partition(" ")
        result.append((word.upper(), rest.strip()))
        pending = ""
    return result


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, in order."""
    out: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def healthcheck_command() -> list[str]:
    (args,) = [a for i, a in instructions() if i == "HEALTHCHECK"]
    command: list[str] = json.loads(args.split(" CMD ", 1)[1])
    return command


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context, by .dockerignore rules.

    As moby's patternmatcher does it: the last pattern that matches the path or one of its
    parent directories wins; ``!`` patterns put paths back; ``*`` stays within a directory,
    ``**`` crosses them.
    """
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_hadolint_finds_nothing() -> None:
    """hadolint reports no problems in deploy/Dockerfile."""
    result = run([tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_image_is_multi_stage_slim_python_311() -> None:
    """The image builds wheels in one stage and runs them in a slim Python 3.11 stage."""
    built = stages()
    assert len(built) >= 2
    args = dict(a.split("=", 1) for i, a in instructions() if i == "ARG" and "=" in a)
    final_from = built[-1][0][1].split()[0]
    image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], final_from)
    assert image == "python:3.11-slim"
    assert any("pip wheel" in a for i, a in built[0] if i == "RUN")
    # the runtime installs offline from the build stage's wheels and has no build tools
    installs = [a for i, a in built[-1] if i == "RUN" and "pip install" in a]
    assert installs and all("--no-index" in a for a in installs)
    assert not any(re.search(r"apt-get|gcc|build-essential", a) for i, a in built[-1])


def test_runtime_is_non_root_with_state_volume_healthcheck_and_command() -> None:
    """The runtime is a fixed non-root uid, state on a volume, a /healthz check and the daemon."""
    final = dict(stages()[-1])
    user = final["USER"].split(":")[0]
    assert user.isdigit() and int(user) >= 1000
    assert json.loads(final["VOLUME"]) == [STATE_VOLUME]
    assert final["WORKDIR"] == STATE_VOLUME
    assert final["EXPOSE"] == "9470"
    assert json.loads(final["CMD"]) == [
        "risingtide", "run", "-c", CONFIG_PATH, "--listen", "0.0.0.0:9470",
    ]  # fmt: skip
    health = healthcheck_command()
    assert health[0] == "python" and "urllib" in health[-1] and "/healthz" in health[-1]
    copies = [a for i, a in stages()[-1] if i == "COPY" and a.endswith(CONFIG_PATH)]
    assert copies == [f"deploy/container/rising-tide.yaml {CONFIG_PATH}"]


def test_build_context_keeps_what_the_image_copies_and_drops_the_rest() -> None:
    """Every file the Dockerfile COPYs is in the build context; .venv, .git and state are not."""
    patterns = ignore_patterns()
    sources = [
        src
        for ins, args in instructions() if ins == "COPY" and not args.startswith("--from")
        for src in args.split()[:-1]
    ]  # fmt: skip
    assert sources
    for src in sources:
        path = REPO / src
        assert path.exists(), src
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for f in files:
            rel = f.relative_to(REPO).as_posix()
            if "__pycache__" in rel:
                assert ignored(rel, patterns), rel
            else:
                assert not ignored(rel, patterns), f"{rel} is copied but left out of the context"
    for leftover in [".venv/bin/python", ".git/HEAD", "state/rising-tide.sqlite", "tests/x.py"]:
        assert ignored(leftover, patterns), leftover


def test_container_config_is_the_demo_with_state_on_the_volume() -> None:
    """deploy/container/rising-tide.yaml is config/rising-tide.yaml apart from its server block."""
    demo = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    container = yaml.safe_load(CONTAINER_CONFIG.read_text(encoding="utf-8"))
    server = container.pop("server")
    demo.pop("server")
    assert container == demo, "copy config/rising-tide.yaml's changes into the container config"
    assert Path(server["state_file"]).parent == Path(STATE_VOLUME)
    assert server["listen"] == "0.0.0.0:9470"
    result = run([sys.executable, "-m", "risingtide", "check", "-c", str(CONTAINER_CONFIG)])
    assert result.returncode == 0, result.stderr


def test_healthcheck_passes_on_a_live_daemon_and_fails_on_none(demo_daemon: Process) -> None:
    """The image's HEALTHCHECK command passes against a live daemon and fails without one."""
    command = healthcheck_command()
    command[0] = sys.executable
    address = demo_daemon.url.removeprefix("http://")
    live = [arg.replace("127.0.0.1:9470", address) for arg in command]
    assert run(live, timeout=10).returncode == 0
    dead = [arg.replace("127.0.0.1:9470", f"127.0.0.1:{free_port()}") for arg in command]
    assert run(dead, timeout=10).returncode != 0


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def binds(service: dict[str, Any]) -> dict[str, str]:
    """{host path relative to deploy/: container path} for a service's bind mounts."""
    return {
        v.split(":")[0]: v.split(":")[1] for v in service.get("volumes", []) if v.startswith(".")
    }


def test_docker_compose_accepts_the_stack(tmp_path: Path) -> None:
    """docker-compose config validates deploy/compose.yaml (no engine needed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    result = run(
        [tool("docker-compose"), "-f", str(COMPOSE), "config", "-q"], cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_wires_daemon_prometheus_and_grafana() -> None:
    """Compose mounts what exists, keeps state on a volume, and each service finds the next."""
    doc = compose()
    services = doc["services"]
    assert set(services) == {"rising-tide", "prometheus", "grafana"}
    for name, service in services.items():
        for host in binds(service):
            assert (DEPLOY / host).exists(), f"{name} mounts missing {host}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        named = [v.split(":")[0] for v in service.get("volumes", []) if not v.startswith(".")]
        assert set(named) <= set(doc["volumes"]), name

    daemon = services["rising-tide"]
    build = daemon["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert binds(daemon) == {"./container/rising-tide.yaml": CONFIG_PATH}
    assert f"rising-tide-state:{STATE_VOLUME}" in daemon["volumes"]

    prometheus = services["prometheus"]
    assert binds(prometheus) == {"./prometheus": "/etc/prometheus"}
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "rising-tide")
    assert job["static_configs"][0]["targets"] == ["rising-tide:9470"]
    assert "rules.yml" in scrape["rule_files"]

    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


@pytest.mark.parametrize("image", ["prometheus", "grafana"])
def test_compose_pins_third_party_images(image: str) -> None:
    """Prometheus and Grafana images are pinned to a version, so the demo does not drift."""
    ref = compose()["services"][image]["image"]
    assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", ref), ref
