"""A real `andini serve` for the API tests and the load benchmark: a subprocess on 127.0.0.1, its own
ANDINI_HOME, stopped by pid. Nothing here fakes the server; tests talk HTTP to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """`python -m andini.cli serve` with the given settings; `url` and `headers` to talk to it."""

    def __init__(self, home: Path, token: str | None = TOKEN, script: Path | None = None, **settings: str):
        home.mkdir(parents=True, exist_ok=True)
        self.home, self.token, self.port, self.script = home, token, free_port(), script
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "serve.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ANDINI_")}
        self.env.update({"ANDINI_HOME": str(home), "PYTHONPATH": str(REPO),
                         **{f"ANDINI_{k.upper()}": str(v) for k, v in settings.items()}})
        if token:
            self.env["ANDINI_API_TOKEN"] = token
        self.proc: subprocess.Popen | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def command(self) -> list[str]:
        if self.script:  # a launcher of the same app, e.g. with a scripted agent for plumbing tests
            return [sys.executable, str(self.script), str(self.port)]
        return [sys.executable, "-m", "andini.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def start(self, timeout: float = 60) -> ApiServer:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.command(), env=self.env, cwd=REPO, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"andini serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"andini serve did not answer in {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def link_model_cache(home: Path, model_cache: Path) -> None:
    """Share the session's converted model, as tests/conftest.py does for in-process tests."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(model_cache)
