"""`docker-compose.yml` and `services/Dockerfile` match the code (no Docker engine runs here, so
they are checked as files): the compose file is valid against the Compose Specification, every
service is built from the one Dockerfile with `SERVICE` set to its folder and runs its own
package, every environment variable a Livestage container gets is one a settings class reads,
ports and health checks agree with the settings, the LiveKit config and compose agree on ports
and the webhook route, and hadolint passes on the Dockerfile.

A service's image is the stage `SERVICE` names and every stage it is built `FROM`; the checks
read those instructions, base first, the way BuildKit assembles them."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from livestage.settings import env_variables, settings_classes

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "services" / "Dockerfile"
SERVICE_DIRS = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
BIN = Path(sys.executable).parent
# Variables of the Python runtime and of the build, not of Livestage.
RUNTIME_ENV = {"PATH", "PYTHONUNBUFFERED"}
BUILD_ENV_PREFIXES = ("UV_", "PIP_")


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def package_of(service_dir: str) -> str:
    (package,) = [p.parent.name for p in (ROOT / "services" / service_dir).glob("*/__main__.py")]
    return package


def compose_name(service_dir: str) -> str:
    return service_dir  # compose services are named like their folders


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages(text: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(name, base, instructions) of each stage, in order; an unnamed stage's name is ""."""
    found: list[tuple[str, str, list[tuple[str, str]]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            found.append((name.strip(), base.strip(), []))
        elif found:
            found[-1][2].append((keyword, rest))
    return found


def image_steps(service_dir: str) -> list[tuple[str, str]]:
    """The instructions that make the service's image: the last stage with `SERVICE` set to the
    service's folder, and the stages it is built FROM, base first."""
    by_name = {name: (base, steps) for name, base, steps in stages(DOCKERFILE.read_text())}
    *_, (_, base, steps) = stages(DOCKERFILE.read_text())
    chain = [steps]
    while True:
        base = base.replace("${SERVICE}", service_dir)
        if base not in by_name:
            break
        base, steps = by_name[base]
        chain.append(steps)
    return [step for steps in reversed(chain) for step in steps]


def copied_stages(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the stages these steps `COPY --from`."""
    by_name = {name: stage_steps for name, _, stage_steps in stages(DOCKERFILE.read_text())}
    return [
        step
        for keyword, rest in steps
        if keyword == "COPY" and (source := re.match(r"--from=(\S+)", rest))
        for step in by_name[source.group(1)]
    ]


def env_of_stage(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in steps:
        if keyword == "ENV":
            for name, value in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", rest):
                env[name] = value
    return env


SETTINGS_VARIABLES = set(env_variables(settings_classes()))


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "docker-compose.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_infrastructure_services_and_their_persistence() -> None:
    services = compose()["services"]
    for name in ("nats", "redis", "livekit", "otel-collector", "prometheus", "grafana", "jaeger"):
        assert name in services, name
    nats = services["nats"]
    assert "--jetstream" in nats["command"] and "/data" in nats["command"]
    assert any(v.endswith(":/data") for v in nats["volumes"])
    redis = services["redis"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    for name in ("nats", "redis"):
        assert services[name]["volumes"][0].split(":")[0] in compose()["volumes"]


@pytest.mark.parametrize("service_dir", SERVICE_DIRS)
def test_each_service_is_built_from_the_dockerfile_and_runs_its_package(
    service_dir: str,
) -> None:
    service = compose()["services"][compose_name(service_dir)]
    assert service["build"] == {
        "context": ".",
        "dockerfile": "services/Dockerfile",
        "args": {"SERVICE": service_dir},
    }
    # the Dockerfile builds the distribution livestage-${SERVICE}
    project = tomllib.loads((ROOT / "services" / service_dir / "pyproject.toml").read_text())
    assert project["project"]["name"] == f"livestage-{service_dir}"
    package = package_of(service_dir)
    assert service["command"] == ["python", "-m", package]
    steps = image_steps(service_dir)
    (cmd,) = [rest for keyword, rest in steps if keyword == "CMD"]
    assert cmd == f'["python", "-m", "{package}"]'
    # .env is optional: a missing file is not an error
    assert {"path": ".env", "required": False} in service["env_file"]


@pytest.mark.parametrize("service_dir", SERVICE_DIRS)
def test_every_environment_variable_is_one_a_settings_class_reads(service_dir: str) -> None:
    service = compose()["services"][compose_name(service_dir)]
    unknown = set(service["environment"]) - SETTINGS_VARIABLES
    assert not unknown, f"compose sets variables no settings class reads: {sorted(unknown)}"
    image_env = env_of_stage(image_steps(service_dir))
    unknown = {
        name
        for name in image_env
        if name not in RUNTIME_ENV
        and not name.startswith(BUILD_ENV_PREFIXES)
        and name not in SETTINGS_VARIABLES
    }
    assert not unknown, f"Dockerfile sets variables no settings class reads: {sorted(unknown)}"


@pytest.mark.parametrize("service_dir", SERVICE_DIRS)
def test_ports_and_health_checks_agree_with_the_settings(service_dir: str) -> None:
    service = compose()["services"][compose_name(service_dir)]
    steps = image_steps(service_dir)
    environment = {**env_of_stage(steps), **service["environment"]}
    (health,) = [rest for keyword, rest in steps if keyword == "HEALTHCHECK"]
    exposed = {int(port) for keyword, rest in steps if keyword == "EXPOSE" for port in rest.split()}
    if service_dir == "token":
        port = int(environment["TOKEN_PORT"])
        assert environment["TOKEN_HOST"] == "0.0.0.0"
        assert f"http://127.0.0.1:{port}/healthz" in health
        # the edge replicas publish no port: edge-proxy's reaches them on TOKEN_PORT
        proxy = compose()["services"]["edge-proxy"]
        assert [p.split(":")[-1] for p in proxy["ports"]] == [str(port)]
        proxy_conf = (ROOT / "deploy" / "edge-proxy" / "nginx.conf").read_text()
        assert f"http://{compose_name(service_dir)}:{port};" in proxy_conf
        assert environment["TOKEN_WEB_DIST"] == "/app/web/dist"
    else:
        port = int(environment["LIVESTAGE_HEALTH_PORT"])
        assert environment["LIVESTAGE_HEALTH_HOST"] == "0.0.0.0"
        assert f"http://127.0.0.1:{port}/healthz" in health
    assert port in exposed
    assert '"python", "-m", "livestage.health"' in health


@pytest.mark.parametrize("service_dir", SERVICE_DIRS)
def test_images_are_multi_stage_uv_built_and_run_as_non_root(service_dir: str) -> None:
    final = image_steps(service_dir)
    runs = [rest for keyword, rest in copied_stages(final) if keyword == "RUN"]
    assert any(
        "uv sync --frozen --no-dev --package livestage-${SERVICE}" in run and "--no-editable" in run
        for run in runs
    )
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert any(c.startswith("--from=build ") and "/app/.venv /app/.venv" in c for c in copies)
    (user,) = [rest for keyword, rest in final if keyword == "USER"]
    assert user not in ("0", "root")
    assert any(keyword == "HEALTHCHECK" for keyword, _ in final)


def image_text(service_dir: str) -> str:
    """The image's instructions and those of the stages it copies from, one per line."""
    steps = image_steps(service_dir)
    return "\n".join(f"{keyword} {rest}" for keyword, rest in steps + copied_stages(steps))


def test_special_images_carry_what_their_service_needs() -> None:
    edge = image_text("token")
    assert "npm ci" in edge and "npm run build" in edge and "/web/dist /app/web/dist" in edge
    assert re.search(r"apt-get install[^\n]*\bchromium\b", image_text("stage-producer"))
    assert re.search(r"apt-get install[^\n]*\bespeak-ng\b", image_text("host-agent"))
    # ... and only theirs: no image carries another's extras
    assert "npm" not in image_text("stage-producer")
    for service_dir in {"token", "moderation", "chat-history"}:
        assert "apt-get" not in image_text(service_dir), service_dir


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    result = subprocess.run(
        [str(BIN / "hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_livekit_config_and_compose_agree_on_ports_and_the_webhook_route() -> None:
    from token_service.app import create_app

    config = yaml.safe_load((ROOT / "deploy/livekit/livekit.compose.yaml").read_text())
    livekit = compose()["services"]["livekit"]
    # published on LIVESTAGE_BIND_ADDRESS (127.0.0.1 unless opted out: tests/ops/test_compose.py)
    ports = [p.removeprefix("${LIVESTAGE_BIND_ADDRESS:-127.0.0.1}:") for p in livekit["ports"]]
    rtc = config["rtc"]
    udp = f"{rtc['port_range_start']}-{rtc['port_range_end']}"
    assert f"{udp}:{udp}/udp" in ports
    assert f"{rtc['tcp_port']}:{rtc['tcp_port']}" in ports
    assert f"{config['port']}:{config['port']}" in ports
    assert livekit["volumes"] == ["./deploy/livekit/livekit.compose.yaml:/etc/livekit.yaml:ro"]

    (webhook_url,) = config["webhook"]["urls"]
    match = re.fullmatch(r"http://([a-z-]+):(\d+)(/\S+)", webhook_url)
    assert match, webhook_url
    host, port, path = match.groups()
    edge = compose()["services"][host]
    assert edge["environment"]["TOKEN_PORT"] == port
    assert path in create_app().openapi()["paths"]
    # webhooks are signed with the key compose gives livekit-server (its LIVEKIT_KEYS is built
    # from LIVEKIT_API_KEY and the generated secret at start) and the edge by default
    default_key = f"${{LIVEKIT_API_KEY:-{config['webhook']['api_key']}}}"
    assert livekit["environment"]["LIVEKIT_API_KEY"] == default_key
    assert compose()["services"]["token"]["environment"]["LIVEKIT_API_KEY"] == default_key


def test_every_file_compose_mounts_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_the_edge_reaches_the_stage_producers_asset_server() -> None:
    services = compose()["services"]
    edge, stage = services["token"]["environment"], services["stage-producer"]
    steps = image_steps("stage-producer")
    stage_env = {**env_of_stage(steps), **stage["environment"]}
    assert stage_env["STAGE_HTTP_HOST"] == "0.0.0.0"
    assert edge["TOKEN_STAGE_MEDIA_URL"] == f"http://stage-producer:{stage_env['STAGE_HTTP_PORT']}"
    exposed = {port for keyword, rest in steps if keyword == "EXPOSE" for port in rest.split()}
    assert stage_env["STAGE_HTTP_PORT"] in exposed
    # the asset store is a volume the non-root user owns
    (volume,) = [v for v in stage["volumes"] if v.endswith(":" + stage_env["STAGE_ASSET_DIR"])]
    assert volume.split(":")[0] in compose()["volumes"]
    assert f"chown livestage:livestage {stage_env['STAGE_ASSET_DIR']}" in image_text(
        "stage-producer"
    )
