"""`docker-compose.yml` as Docker Compose itself would load it, and its secrets.

No Docker engine runs here, so the file is loaded with compose-go, the loader Docker Compose
uses (`tools/composecheck`, built by scripts/bootstrap.sh into .cache/bin/composecheck), in a
temporary folder with a copy of the file: interpolation, the Compose Specification's schema,
consistency checks and every service's env_file merged into its environment, as `docker compose
config` shows them. Checked on what that loader resolves:

- compose refuses to start until `scripts/compose-secrets.sh` has written `.env.compose`, and the
  script writes random secrets once (a second run keeps them);
- no secret in the rendered config is a fixed one: each is "" or a value the script made (a
  `.env` copied from `.env.example`, with its `LIVEKIT_API_SECRET=secret`, does not win);
- every published port listens on 127.0.0.1 unless LIVESTAGE_BIND_ADDRESS (the viewer page and
  LiveKit) or LIVESTAGE_OBSERVE_BIND_ADDRESS (Grafana, Jaeger, Prometheus) says otherwise;
- each container gets exactly the secrets its settings read (the table below), even when `.env`
  holds every key;
- the host agent's stop grace period covers its drain and stop timeout;
- two replicas of each Livestage service but chat-bridge, none with a fixed host port: the
  viewer page's port is edge-proxy's, which spreads requests over the edge replicas, and the
  stage producers share one asset volume;
- a broken file is refused with the loader's own message.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from livestage.settings import ServiceSettings, default_of, settings_classes
from tests.support.service_secrets import SERVICE_SETTINGS, secret_env_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSECHECK = ROOT / ".cache" / "bin" / "composecheck"
SECRETS_SCRIPT = ROOT / "scripts" / "compose-secrets.sh"
GENERATED = {
    "LIVEKIT_API_SECRET",
    "LIVESTAGE_OPERATOR_SECRET",
    "TOKEN_VISITOR_KEY",
    "STAGE_ASSET_KEY",
}

# The secret variables each container reads: what its settings classes read
# (tests/support/service_secrets.py, the Helm chart's test reads the same map).
SECRETS_READ: dict[str, set[str]] = {
    # NATS_URL / REDIS_URL carry no credentials in compose (fixed, in-network addresses)
    **{
        service: secret_env_names(service) - {"NATS_URL", "REDIS_URL"}
        for service in SERVICE_SETTINGS
    },
    "livekit": {"LIVEKIT_API_SECRET"},  # livekit-server's own (LIVEKIT_KEYS is built from it)
}
PUBLIC = {"edge-proxy", "livekit"}  # LIVESTAGE_BIND_ADDRESS
OBSERVABILITY = {"grafana", "jaeger", "prometheus"}  # LIVESTAGE_OBSERVE_BIND_ADDRESS


def secret_variables() -> set[str]:
    """Variables whose settings field is a SecretStr."""
    names = set()
    for cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field_name, field in cls.model_fields.items():
            if "SecretStr" in str(field.annotation):
                names.add((prefix + field_name).upper())
    return names


def composecheck(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert COMPOSECHECK.exists(), (
        "composecheck is missing: run `make bootstrap` (it builds .cache/bin/composecheck)"
    )
    return subprocess.run(
        [str(COMPOSECHECK), *args, str(folder / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        # only what is given: the shell's own LIVEKIT_* or LIVESTAGE_* must not leak in
        env={"PATH": os.environ.get("PATH", ""), **(env or {})},
    )


def generate_secrets(folder: Path) -> dict[str, str]:
    result = subprocess.run(
        ["bash", str(SECRETS_SCRIPT), str(folder / ".env.compose")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return read_env(folder / ".env.compose")


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a copy of docker-compose.yml and nothing else (no .env, no .env.compose)."""
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    return tmp_path


def rendered(folder: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = composecheck(folder, "-json", env=env)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def environment(config: dict[str, Any], service: str) -> dict[str, str]:
    return {k: v or "" for k, v in (config["services"][service].get("environment") or {}).items()}


def test_compose_refuses_to_start_until_the_secrets_are_generated(project: Path) -> None:
    result = composecheck(project)
    assert result.returncode == 1
    assert ".env.compose not found" in result.stderr, result.stderr
    # the file itself names the way out
    assert "scripts/compose-secrets.sh" in (project / "docker-compose.yml").read_text()

    generate_secrets(project)
    result = composecheck(project)
    assert result.returncode == 0, result.stderr


def test_the_secrets_script_writes_random_secrets_once(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    values = generate_secrets(first)
    assert set(values) == GENERATED
    assert all(len(value) >= 40 for value in values.values()), values.keys()
    assert len(set(values.values())) == len(values), "each secret is its own random value"
    assert stat.S_IMODE((first / ".env.compose").stat().st_mode) == 0o600

    assert generate_secrets(first) == values, "a second run keeps every value"
    assert not set(generate_secrets(second).values()) & set(values.values()), "random per clone"

    # a value the operator chose is kept; a missing one is added
    kept = "my-own-operator-secret-of-32-chars!"
    (first / ".env.compose").write_text(f"LIVESTAGE_OPERATOR_SECRET={kept}\n")
    again = generate_secrets(first)
    assert set(again) == GENERATED and again["LIVESTAGE_OPERATOR_SECRET"] == kept
    assert again["LIVEKIT_API_SECRET"] != values["LIVEKIT_API_SECRET"]


def test_no_fixed_secret_in_the_file_or_the_rendered_config(project: Path) -> None:
    text = (project / "docker-compose.yml").read_text()
    assert "livestage-compose-dev-secret-change-me" not in text
    secrets = secret_variables()
    generated = generate_secrets(project)
    # a .env copied from .env.example carries the known `--dev` secret: it must not win
    (project / ".env").write_text((ROOT / ".env.example").read_text())
    assert read_env(project / ".env")["LIVEKIT_API_SECRET"] == "secret"
    config = rendered(project)
    for name in config["services"]:
        for variable, value in environment(config, name).items():
            if variable in secrets:
                assert value in ("", generated.get(variable)), f"{name}: fixed {variable}"
    assert environment(config, "livekit")["LIVEKIT_API_SECRET"] == generated["LIVEKIT_API_SECRET"]
    assert environment(config, "token")["LIVEKIT_API_SECRET"] == generated["LIVEKIT_API_SECRET"]
    # livekit-server's keys are built from the same key and secret when it starts
    livekit = config["services"]["livekit"]
    assert 'LIVEKIT_KEYS="${LIVEKIT_API_KEY}: ${LIVEKIT_API_SECRET}"' in " ".join(
        livekit["entrypoint"]
    )
    assert environment(config, "livekit")["LIVEKIT_API_KEY"] == "devkey"
    # Grafana's image admin/admin is no way in
    grafana = environment(config, "grafana")
    assert grafana["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    assert grafana["GF_AUTH_BASIC_ENABLED"] == "false"


def published(config: dict[str, Any]) -> dict[str, set[str]]:
    """Each service's published ports' host addresses."""
    return {
        name: {port.get("host_ip", "") for port in service.get("ports") or []}
        for name, service in config["services"].items()
        if service.get("ports")
    }


def test_every_published_port_listens_on_127_0_0_1_unless_opted_out(project: Path) -> None:
    generate_secrets(project)
    by_default = published(rendered(project))
    assert set(by_default) == PUBLIC | OBSERVABILITY
    assert all(hosts == {"127.0.0.1"} for hosts in by_default.values()), by_default

    public = published(rendered(project, {"LIVESTAGE_BIND_ADDRESS": "0.0.0.0"}))
    assert {name for name, hosts in public.items() if hosts == {"0.0.0.0"}} == PUBLIC
    assert all(public[name] == {"127.0.0.1"} for name in OBSERVABILITY)

    # the opt-in works from .env as well, and the observability UIs have their own
    (project / ".env").write_text(
        "LIVESTAGE_BIND_ADDRESS=203.0.113.7\nLIVESTAGE_OBSERVE_BIND_ADDRESS=10.0.0.5\n"
    )
    both = published(rendered(project))
    assert all(both[name] == {"203.0.113.7"} for name in PUBLIC)
    assert all(both[name] == {"10.0.0.5"} for name in OBSERVABILITY)


def test_the_table_names_only_secrets_the_settings_define() -> None:
    secrets = secret_variables()
    listed = set().union(*SECRETS_READ.values())
    assert listed <= secrets, sorted(listed - secrets)
    assert secrets <= listed, f"no service reads {sorted(secrets - listed)}: add it to the table"


def test_each_container_gets_only_the_secrets_it_reads(project: Path) -> None:
    """With every secret variable set in .env to a marker of its own, each container's resolved
    environment holds exactly the markers (and generated values) of the secrets it reads."""
    secrets = secret_variables()
    generated = generate_secrets(project)
    markers = {name: f"marker-{name.lower()}-0123456789abcdef" for name in secrets}
    (project / ".env").write_text("".join(f"{name}={value}\n" for name, value in markers.items()))
    config = rendered(project)
    value_of = {**markers, **generated}  # .env.compose wins over .env
    for name in config["services"]:
        env = environment(config, name)
        received = {variable for variable in secrets if env.get(variable)}
        assert received == SECRETS_READ.get(name, set()), name
        for variable in received:
            assert env[variable] == value_of[variable], f"{name}: {variable}"
        # no secret value hides under another name either
        values = " ".join(env.values())
        leaked = {
            variable
            for variable, value in value_of.items()
            if value in values and variable not in received
        }
        assert not leaked, f"{name} receives {sorted(leaked)}"


def test_only_the_stage_producer_may_use_chromiums_sandbox(project: Path) -> None:
    """Chromium's sandbox needs a user namespace, which Docker's default seccomp and AppArmor
    profiles refuse: the stage producer (and no other container) runs without them."""
    generate_secrets(project)
    config = rendered(project)
    for name, service in config["services"].items():
        options = set(service.get("security_opt") or [])
        if name == "stage-producer":
            assert options == {"seccomp=unconfined", "apparmor=unconfined"}
        else:
            assert not options, name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servicez:\n  a:\n    image: x\n", "additional properties 'servicez' not allowed"),
        (
            "services:\n  a:\n    image: x\n    volumes: [data:/d]\n",
            'service "a" refers to undefined volume data',
        ),
        (
            "services:\n  a:\n    image: x\n    depends_on: [b]\n",
            'service "a" depends on undefined service "b"',
        ),
        ("services:\n  a:\n    image: x\n    ports: ['80:abc']\n", "Invalid containerPort: abc"),
        (
            "services:\n  a:\n    image: x\n    environment:\n      A: ${B:?set B}\n",
            "required variable B is missing a value: set B",
        ),
    ],
    ids=["unknown-key", "undefined-volume", "undefined-service", "bad-port", "required-variable"],
)
def test_a_broken_compose_file_is_refused_with_the_loaders_message(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "docker-compose.yml").write_text(text)
    result = composecheck(tmp_path)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr


def test_the_host_agent_may_drain_before_compose_kills_it(project: Path) -> None:
    (project / ".env.compose").write_text("")
    config = rendered(project)
    env = environment(config, "host-agent")
    grace_s = float(config["services"]["host-agent"]["stop_grace_period"].removesuffix("s"))
    drain_s = float(env["HOST_DRAIN_TIMEOUT_S"])
    stop_s = float(
        env.get("LIVESTAGE_STOP_TIMEOUT_S") or default_of(ServiceSettings, "stop_timeout_s")
    )
    assert drain_s > 0 and grace_s > drain_s + stop_s, (grace_s, drain_s, stop_s)


def test_the_egress_profile_adds_livekit_egress_on_livekits_redis(project: Path) -> None:
    """livekit-egress is in profile `egress` only (compose's loader leaves it out by default;
    composecheck enables no profile), with a pinned image, LiveKit's key and secret, LiveKit's
    Redis and Chrome's SYS_ADMIN; LiveKit itself is configured with that Redis (egress jobs
    travel through it) and the edge tells the egress the in-network stage URL."""
    generate_secrets(project)
    config = rendered(project)
    assert "livekit-egress" not in config["services"]
    egress = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["livekit-egress"]
    assert egress["profiles"] == ["egress"]
    image = egress["image"]
    assert image.startswith("livekit/egress:v") and image != "livekit/egress:latest"
    body = " ".join(egress["entrypoint"])
    for part in ("$${LIVEKIT_API_SECRET}", "redis:6379", "ws://livekit:7880", "/entrypoint.sh"):
        assert part in body
    assert egress["environment"]["LIVESTAGE_OPERATOR_SECRET"] == ""
    assert "SYS_ADMIN" in egress["cap_add"]
    livekit_config = yaml.safe_load((ROOT / "deploy/livekit/livekit.compose.yaml").read_text())
    assert livekit_config["redis"]["address"] == "redis:6379"
    assert environment(config, "token")["TOKEN_EGRESS_STAGE_URL"].startswith("http://token:8080/")


SCALED = {"token", "moderation", "chat-history", "stage-producer", "host-agent"}


def test_two_of_each_scaled_service_and_no_fixed_host_port_on_them(project: Path) -> None:
    generate_secrets(project)
    services = rendered(project)["services"]
    replicas = {
        name: (service.get("deploy") or {}).get("replicas", 1) for name, service in services.items()
    }
    assert {name for name, count in replicas.items() if count == 2} == SCALED
    assert replicas["chat-bridge"] == 1  # one follower of the platforms' chat
    for name in SCALED:
        assert not services[name].get("ports"), f"{name} publishes a host port: it cannot scale"
    # the viewer page's port reaches the edge replicas through edge-proxy, whose config names
    # the edge service and believes no X-Forwarded-For a client sends
    proxy = services["edge-proxy"]
    (mount,) = proxy["volumes"]
    conf = (ROOT / "deploy" / "edge-proxy" / "nginx.conf").read_text()
    assert mount["source"].endswith("deploy/edge-proxy/nginx.conf")
    assert "http://token:8080" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    trusted = json.loads(environment({"services": services}, "token")["TOKEN_TRUSTED_PROXIES"])
    assert trusted  # the edge believes edge-proxy's X-Forwarded-For
    # every stage producer serves every asset: one shared volume
    (assets,) = [
        v for v in services["stage-producer"]["volumes"] if v["target"] == "/data/stage-assets"
    ]
    assert assets["type"] == "volume" and assets["source"] == "stage-assets"
