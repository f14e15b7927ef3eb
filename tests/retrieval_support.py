"""Helpers for the retrieval tests: a small, writable copy of the runbooks and a real Chroma server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMA = Path(sys.executable).parent / "chroma"

# Six node runbooks: small (~20 chunks), each with Meaning / Impact / Diagnosis / Mitigation sections.
RUNBOOKS = ["NodeClockNotSynchronising.md", "NodeClockSkewDetected.md", "NodeFilesystemSpaceFillingUp.md",
            "NodeNetworkReceiveErrs.md", "NodeRAIDDegraded.md", "NodeFileDescriptorLimit.md"]


def copy_runbooks(shared_data: Path, dest: Path, names: list[str] = RUNBOOKS) -> Path:
    """A writable copy of some runbooks (tests change and delete files)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(shared_data / "kb" / "prometheus-operator" / "node" / name, dest / name)
    return dest


def chunks_by_source(collection: str | None = None) -> dict[str, list[dict]]:
    """Every stored chunk's metadata (with its id and text), grouped by source."""
    from retrieval import store

    coll = store.get_collection(collection)
    grouped: dict[str, list[dict]] = {}
    for cid, meta, text in store.iter_metadata(coll, include_documents=True):
        grouped.setdefault(meta["source"], []).append({**meta, "id": cid, "text": text})
    return grouped


@contextmanager
def chroma_server(path: Path, port: int) -> Iterator[str]:
    """A real `chroma run` process on 127.0.0.1:port; stopped by its pid on exit."""
    log = (path.parent / "chroma-server.log").open("wb")
    proc = subprocess.Popen([str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc)
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma server exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"chroma server at {url} did not answer within {timeout}s")
