"""`andini ui` as a real process for the browser tests: started in its own process group, healthy
before the test, stopped with its children after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ANDINI = Path(sys.executable).with_name("andini")


def wait_for_health(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"andini ui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"andini ui did not answer at {url} within {timeout:.0f} s")


@contextmanager
def running_ui(port: int, log_path: Path, env: dict[str, str], *args: str, timeout: float = 60) -> Iterator[str]:
    """The UI's URL while `andini ui --port PORT ARGS` runs; its output goes to log_path."""
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(ANDINI), "ui", "--port", str(port), *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(url, proc, timeout)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:  # a model call in progress does not stop for SIGTERM
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
