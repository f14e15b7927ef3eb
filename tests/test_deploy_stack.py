"""The deployment shape for real: `docker compose` builds the images and runs them, on the host network
of a machine with no image registry (docker-compose.ci.yml over docker-compose.yml).

The cpu profile: both health checks pass; the API answers with its bearer token and refuses without;
a document ingested through the API is cited by an answer through the API; headless Chromium against
the containerized UI asks a question and gets an answer with Sources; `docker compose restart` keeps the
document, the task and the conversation (volumes); the app container killed (`docker compose kill`)
while a writer inside it holds plan -> tasks' transaction open leaves the plan and none of its tasks,
and the API then converts it whole; `down` leaves no container. Then the tgi profile:
the app container, search-first on, answers through TGI's wire (the TGI-wire server of
tests/agent_support.py, run as the compose `tgi` service) and cites the document.

scripts/docker-setup.sh (run from here as root) installs the engine, the compose plugin and the local
base images when absent; with CI set, a missing Docker fails instead of skipping. Images are cached by
Docker between runs: the first run builds them (minutes), later runs only start containers. Durations
are printed (`-s`), never asserted."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.test_store_crash import HOLD, STEPS, writer_stopped_inside_to_tasks
from tests.test_ui_browser import (
    _ask_and_check_the_answer,
    _reopen_the_conversation,
    _shot,
    browser_page,  # noqa: F401 - a fixture
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUNBOOK = ("# Exporter runbook\n\n## Restart\n\nRestart the exporter with `systemctl restart exporter`, then "
           "check its metrics page on port 9100.\n")
QUESTION = "How do I restart the exporter?"
WIRE_REPLY = "Restart it with systemctl restart exporter, then check port 9100."
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.ci.yml")


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _no_docker(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the compose stack: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """Docker with compose and the local base images, set up by scripts/docker-setup.sh when we may."""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        started = time.monotonic()
        # PYTHON: the base image carries the interpreter of this venv, the one constraints.txt fits.
        done = subprocess.run([str(REPO / "scripts" / "docker-setup.sh")], capture_output=True, text=True,
                              env={**os.environ, "PYTHON": sys.executable}, timeout=900)
        if done.returncode != 0:
            _no_docker(f"scripts/docker-setup.sh failed:\n{done.stderr[-3000:]}")
        print(f"\ndocker-setup.sh: {time.monotonic() - started:.1f} s\n{done.stderr}")
        return
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True) \
        if shutil.which("docker") else None
    if probe is None or probe.returncode != 0:
        _no_docker("no docker with the compose plugin (scripts/docker-setup.sh installs both, as root)")
    for image in ("andini-base:bookworm", "andini-wheels:torch-2.13.0"):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            _no_docker(f"{image} is missing: run scripts/docker-setup.sh as root")


class Stack:
    """One compose project (its own name, ports and token) over docker-compose.ci.yml; logs in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.project = f"andini-test-{secrets.token_hex(3)}"
        self.token = secrets.token_urlsafe(24)
        ui, api, chroma, tgi = _free_ports(4)
        self.ui, self.api = f"http://127.0.0.1:{ui}", f"http://127.0.0.1:{api}"
        values = {"ANDINI_API_TOKEN": self.token, "APP_IMAGE_TAG": "test", "UI_HOST_PORT": ui,
                  "API_HOST_PORT": api, "CHROMA_HOST_PORT": chroma, "TGI_HOST_PORT": tgi,
                  "ANDINI_SEARCH_FIRST": "true", "ANDINI_MAX_NEW_TOKENS": "48", "WIRE_REPLY": WIRE_REPLY}
        self.env_file = folder / "stack.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        # Only what docker needs from ours: the test's ANDINI_* must not leak into compose's substitution.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ANDINI_", "COMPOSE_"))}
        self.timings: dict[str, float] = {}

    def command(self, *profiles: str) -> list[str]:
        cmd = ["docker", "compose", "-p", self.project, "--env-file", str(self.env_file)]
        for profile in profiles:
            cmd += ["--profile", profile]
        for name in COMPOSE_FILES:
            cmd += ["-f", str(REPO / name)]
        return cmd

    def compose(self, *args: str, profile: str = "cpu", timeout: float = 1200, what: str = "") -> str:
        cmd = self.command(profile)
        started = time.monotonic()
        log = self.folder / f"compose-{len(self.timings)}-{args[0]}.log"
        with log.open("w") as out:
            done = subprocess.run(cmd + list(args), cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout)
        self.timings[what or " ".join(args)] = time.monotonic() - started
        text = log.read_text()
        assert done.returncode == 0, f"{' '.join(cmd + list(args))} failed:\n{text[-4000:]}\n{self.logs(profile)}"
        return text

    def logs(self, profile: str) -> str:
        done = subprocess.run(self.command(profile) + ["logs", "--no-color", "--tail", "60"], cwd=REPO, env=self.env,
                              capture_output=True, text=True)
        return done.stdout[-6000:]

    def call(self, method: str, path: str, token: str | None = "", **kwargs) -> httpx.Response:
        token = self.token if token == "" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, self.api + path, headers=headers, timeout=900, **kwargs)

    def containers(self) -> list[str]:
        done = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
                              capture_output=True, text=True, check=True)
        return done.stdout.split()

    def report(self) -> None:
        print("\n" + "\n".join(f"{what:>40}: {seconds:7.1f} s" for what, seconds in self.timings.items()))


@pytest.fixture(scope="module")
def stack(docker_ready, tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("stack"))
    yield stack
    stack.report()
    subprocess.run(stack.command("tgi", "cpu") + ["down", "-v", "--remove-orphans"], cwd=REPO, env=stack.env,
                   capture_output=True, timeout=300)
    print(f"compose logs: {stack.folder}")


def _ingest_runbook(stack: Stack) -> None:
    reply = stack.call("POST", "/v1/documents", json={"documents": [{"name": "exporter.md", "content": RUNBOOK}]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["ok"], reply.json()


def _cited(run: dict) -> list[str]:
    return [json.dumps(source) for source in run.get("sources") or [] if "exporter.md" in json.dumps(source)]


def test_compose_config_is_valid_for_every_profile(docker_ready, tmp_path):
    """The main file alone (what a user runs) and with the CI override, as compose itself reads them."""
    env_file = tmp_path / "stack.env"
    env_file.write_text("ANDINI_API_TOKEN=x\n")
    for profile in ("tgi", "vllm", "cpu"):
        for files in (COMPOSE_FILES[:1], COMPOSE_FILES):
            cmd = ["docker", "compose", "--env-file", str(env_file), "--profile", profile]
            for name in files:
                cmd += ["-f", str(REPO / name)]
            done = subprocess.run(cmd + ["config", "--quiet"], cwd=REPO, capture_output=True, text=True)
            assert done.returncode == 0, f"{profile} {files}: {done.stderr}"


@pytest.mark.browser
def test_cpu_profile_runs_answers_and_keeps_its_data_across_restart(stack, browser_page):  # noqa: F811
    stack.compose("up", "-d", "--build", "--wait", "--wait-timeout", "900", what="build + up --wait (cpu)")

    assert stack.call("GET", "/health", token=None).status_code == 200
    assert stack.call("GET", "/ready", token=None).status_code == 401
    assert stack.call("GET", "/ready", token="wrong-token").status_code == 403
    ready = stack.call("GET", "/ready")
    assert ready.status_code == 200 and ready.json()["ready"], ready.text

    _ingest_runbook(stack)
    started = time.monotonic()
    run = stack.call("POST", "/v1/runs", json={"intent": QUESTION}).json()
    stack.timings["API turn (local model)"] = time.monotonic() - started
    assert run["status"] == "done", run
    assert _cited(run), run
    task = stack.call("POST", "/v1/tasks", json={"title": "Restart the exporter"})
    assert task.status_code in (200, 201), task.text

    page = browser_page
    started = time.monotonic()
    try:
        _ask_and_check_the_answer(page, stack.ui)
    except BaseException:
        _shot(page, "stack-chat-failed.png")
        raise
    stack.timings["UI: docs indexed + turn"] = time.monotonic() - started

    stack.compose("restart", what="restart")
    stack.compose("up", "-d", "--wait", "--wait-timeout", "300", what="healthy again")
    documents = [d["source"] for d in stack.call("GET", "/v1/documents").json()]
    assert any(s.endswith("exporter.md") for s in documents), documents
    kept = stack.call("GET", f"/v1/tasks/{task.json()['id']}")
    assert kept.status_code == 200 and kept.json()["title"] == "Restart the exporter", kept.text
    try:
        _reopen_the_conversation(page, stack.ui)  # the thread lives in the andini-data volume
    except BaseException:
        _shot(page, "stack-reopen-failed.png")
        raise
    _kill_the_app_inside_plan_to_tasks(stack)

    stack.compose("down", what="down")
    assert stack.containers() == []


def _kill_the_app_inside_plan_to_tasks(stack: Stack) -> None:
    """A writer in the app container (its Python, its /data volume) saves a plan and holds the
    transaction of plan -> tasks open after some INSERTs; the whole container is killed there."""
    writer = subprocess.Popen(stack.command("cpu") + ["exec", "-T", "app-cpu", "python", "-c",
                                                      writer_stopped_inside_to_tasks(HOLD), "", "new"],
                              cwd=REPO, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(180, writer.kill)  # a writer that never gets inside ends the wait below
    watchdog.start()
    lines = []
    try:
        for line in writer.stdout:
            lines.append(line)
            if line.startswith("inside the transaction"):
                break
        assert lines and lines[-1].startswith("inside the transaction"), "".join(lines)
        plan_id = int(next(line for line in lines if line.startswith("plan ")).split()[1])
        stack.compose("kill", "app-cpu", what="kill app (inside plan -> tasks)")
    finally:
        watchdog.cancel()
        writer.kill()
        writer.wait()
    stack.compose("up", "-d", "--wait", "--wait-timeout", "300", what="healthy after the kill")

    assert stack.call("GET", f"/v1/plans/{plan_id}").json()["plan"]["goal"] == "Release v2"
    assert [t for t in stack.call("GET", "/v1/tasks").json() if t["plan_id"] == plan_id] == []
    made = stack.call("POST", f"/v1/plans/{plan_id}/tasks")
    assert made.status_code == 201, made.text
    assert [t["title"] for t in made.json()] == [f"Step {i}" for i in range(1, STEPS + 1)]


def test_tgi_profile_answers_through_the_wire_with_citations(stack):
    """The production shape's app container (its image, its environment, search-first on) against a
    server speaking TGI's wire format: the documents are searched first, the server answers."""
    stack.compose("up", "-d", "--wait", "--wait-timeout", "600", profile="tgi", what="up --wait (tgi)")
    _ingest_runbook(stack)
    run = stack.call("POST", "/v1/runs", json={"intent": QUESTION}).json()
    assert run["status"] == "done", run
    assert run["answer"].strip() == WIRE_REPLY, run
    assert [c["call"]["name"] for c in run["tool_calls"]] == ["search_knowledge_base"], run
    assert _cited(run), run
    stack.compose("down", profile="tgi", what="down (tgi)")
    assert stack.containers() == []
