"""A property-based run over the API's own OpenAPI document (schemathesis), against the real server.

Every operation gets generated valid and invalid requests (bounded: a fixed seed and a few examples
each), and every answer must match the document: no 5xx, documented status codes, content types and
response schemas, invalid data rejected, valid data accepted. Agent turns and generation only get
invalid requests here, since a valid one runs the model; test_api_roundtrip.py runs a real turn and
test_api_structured.py a real generation.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from api_support import ApiServer, link_model_cache

#: Operations that run the model on a valid request.
RUNS = "^/v1/(runs|generate)"


def schemathesis() -> str:
    path = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(path).exists():
        pytest.skip("schemathesis is not installed (part of the dev extra)")
    return path


def run_schemathesis(server: ApiServer, report: Path, *selection: str) -> subprocess.CompletedProcess:
    command = [schemathesis(), "--no-color", "run", f"{server.url}/openapi.json",
               "--header", f"Authorization: Bearer {server.token}",
               # --max-response-time is a hang guard, not a speed check: the first ingest loads the embedder
               "--checks", "all", "--max-response-time", "300", "--max-examples", "6", "--seed", "20261125", "--workers", "1",
               "--request-timeout", "120", "--phases", "examples,coverage,fuzzing",
               "--report", "junit", "--report-junit-path", str(report), *selection]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_api_conforms_to_its_openapi_document(tmp_path, model_cache):
    home = tmp_path / "home"
    link_model_cache(home, model_cache)
    with ApiServer(home, api_rate_limit="100000/second", api_max_body_bytes="200000") as server:
        # A store with one real document, as a deployment has; an empty store is test_api_roundtrip's case.
        seeded = httpx.post(f"{server.url}/v1/documents", headers=server.headers, timeout=600, json={
            "documents": [{"name": "seed.md", "content": "# Seed\n\nRestart the worker after a deploy."}]})
        assert seeded.status_code == 200, seeded.text
        from agent.plans import PlanStore

        PlanStore(home / "agent.db").save({"goal": "Seed", "steps": [{"title": "One"}, {"title": "Two"}]})
        everything_else = run_schemathesis(server, tmp_path / "rest.xml", "--exclude-path-regex", RUNS)
        if everything_else.returncode != 0:
            pytest.fail(everything_else.stdout[-20000:], pytrace=False)
        runs = run_schemathesis(server, tmp_path / "runs.xml", "--include-path-regex", RUNS, "--mode", "negative")
        if runs.returncode != 0:
            pytest.fail(runs.stdout[-20000:], pytrace=False)
