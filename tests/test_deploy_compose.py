"""docker-compose.yml without a Docker engine: the Compose Specification's JSON Schema (as vendored by the
maintained check-jsonschema package), then what the schema cannot know: profiles hang together, every
dependency is waited on through a health check, and every variable the app gets is an andini setting."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from andini.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
APP_SERVICES = ("app", "app-vllm", "app-cpu")
PROFILES = ("tgi", "vllm", "cpu")
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR:+alt}; "$${...}" is escaped for the container.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, for the forms this file uses."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?"):
            if not current:
                raise ValueError(f"{name}: {arg}")
            return current
        if op == ":+":
            return arg if current else ""
        return current or ""

    return VARIABLE.sub(one, value)


def active(compose: dict, profile: str) -> dict[str, dict]:
    """The services `docker compose --profile PROFILE up` starts."""
    return {name: svc for name, svc in compose["services"].items()
            if not svc.get("profiles") or profile in svc["profiles"]}


def test_compose_file_matches_the_compose_specification_schema():
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                           str(COMPOSE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_a_broken_file(tmp_path):
    """The validator is live: a misspelt key and a wrong condition fail."""
    broken = COMPOSE.read_text().replace("shm_size:", "shm_sise:").replace("service_healthy", "service_happy")
    (tmp_path / "docker-compose.yml").write_text(broken)
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                           str(tmp_path / "docker-compose.yml")], capture_output=True, text=True)
    assert done.returncode == 1 and "shm_sise" in done.stdout


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_waits_on_healthy_dependencies(compose, profile):
    services = active(compose, profile)
    apps = [name for name in services if name in APP_SERVICES]
    assert len(apps) == 1, f"profile {profile} must start exactly one app, got {apps}"
    for name, svc in services.items():
        assert "healthcheck" in svc and svc["healthcheck"]["test"], f"{name} has no health check"
        for dep, rule in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on {dep}, which profile {profile} does not start"
            assert rule == {"condition": "service_healthy"}, f"{name} must wait for {dep} to be healthy"
    assert "chroma" in services[apps[0]]["depends_on"]


def test_gpu_profiles_reserve_an_nvidia_gpu_and_cpu_needs_none(compose):
    for name in ("tgi", "vllm"):
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert not any("deploy" in svc for svc in active(compose, "cpu").values())
    assert active(compose, "cpu")["app-cpu"]["environment"]["ANDINI_BACKEND"] == "local"


def test_images_are_pinned_to_the_expected_releases(compose):
    services = compose["services"]
    assert services["chroma"]["image"] == f"chromadb/chroma:{version('chromadb')}"
    assert re.fullmatch(r"ghcr\.io/huggingface/text-generation-inference:3\.3\.\d+", services["tgi"]["image"])
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", services["vllm"]["image"])
    for name in APP_SERVICES:
        assert services[name]["build"]["dockerfile"] == "Dockerfile"


def test_tgi_loads_the_adapter_and_is_sized_from_the_environment(compose):
    tgi = compose["services"]["tgi"]
    command = " ".join(tgi["command"])
    for flag in ("--lora-adapters", "--max-input-tokens", "--max-total-tokens", "--quantize", "--model-id"):
        assert flag in command
    mounts = [interpolate(m, env_example()).split(":")[1] for m in tgi["volumes"]]
    assert "/adapter" in mounts and "/data" in mounts
    assert "--lora-modules" in " ".join(compose["services"]["vllm"]["command"])


def test_every_variable_the_app_gets_is_an_andini_setting(compose):
    fields = set(Settings.model_fields)
    for name in APP_SERVICES:
        for key in compose["services"][name]["environment"]:
            assert key.startswith("ANDINI_"), f"{name}: {key} is not an andini setting"
            assert key.removeprefix("ANDINI_").lower() in fields, f"{name}: {key} is not in andini.settings"


def test_every_andini_variable_anywhere_is_a_setting():
    fields = set(Settings.model_fields)
    text = COMPOSE.read_text() + ENV_EXAMPLE.read_text()
    for key in set(re.findall(r"\bANDINI_[A-Z_]+\b", text)):
        assert key.removeprefix("ANDINI_").lower() in fields, f"{key} is not in andini.settings"


def test_env_example_lists_exactly_the_variables_compose_reads():
    used = {match[0] for match in VARIABLE.findall(COMPOSE.read_text())}
    listed = set(env_example())
    assert used - listed == set(), f"compose reads variables .env.example does not list: {used - listed}"
    assert listed - used == set(), f".env.example lists variables compose never reads: {listed - used}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_from_env_example_is_valid_settings(compose, name, monkeypatch):
    """Interpolated with .env.example's values, each app's environment loads as andini Settings."""
    env = {key: interpolate(str(value), env_example()) for key, value in compose["services"][name]["environment"].items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.api_token and settings.api_host == "0.0.0.0"
    assert str(settings.home) == "/data" and settings.chroma_url == "http://chroma:8000"


def test_app_needs_a_token_to_start(compose):
    env = compose["services"]["app"]["environment"]
    with pytest.raises(ValueError, match="ANDINI_API_TOKEN"):
        interpolate(env["ANDINI_API_TOKEN"], {})
