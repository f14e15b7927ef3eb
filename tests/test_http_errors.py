"""A failed request names its real cause: the server's own status and message, offline mode,
connection refused, a name that does not resolve, a timeout. Real clients (huggingface_hub for TGI,
langchain-openai, chromadb's HttpClient) against real sockets on 127.0.0.1: the TGI-wire server of
tests/agent_support.py, a port nobody listens on, a reserved name that never resolves (RFC 2606)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.backends import complete
from andini.errors import AndiniError
from andini.http_errors import failure
from andini.schema import Message
from andini.settings import get_settings
from tests.agent_support import FakeServer

ASK = [Message(role="user", content="How do I restart the exporter?")]
NO_SUCH_HOST = "no-such-host.invalid"
ENV = {"tgi": "ANDINI_TGI_URL", "openai": "ANDINI_OPENAI_URL"}


def point(monkeypatch, backend: str, base: str, **env: str) -> str:
    url = base + ("/v1" if backend == "openai" else "")
    monkeypatch.setenv(ENV[backend], url)
    monkeypatch.setenv("ANDINI_MODEL", "served-model")  # openai: skip the /models look-up
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return url


def error_of(backend: str) -> str:
    with pytest.raises(AndiniError) as err:
        complete(ASK, [], backend=backend)
    return str(err.value)


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_the_servers_own_status_and_message(free_port, monkeypatch, backend):
    with FakeServer(free_port) as server:
        url = point(monkeypatch, backend, server.url)
        # twice: the openai client tries a 5xx once more (max_retries=1)
        server.replies += [{"status": 500, "error": "CUDA out of memory while warming up"}] * 2
        text = error_of(backend)
    assert url in text and "500" in text and "CUDA out of memory" in text
    assert "Nothing answers" not in text and "refused" not in text


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_connection_refused_names_the_url_and_the_setting(free_port, monkeypatch, backend):
    url = point(monkeypatch, backend, f"http://127.0.0.1:{free_port}")
    text = error_of(backend)
    assert url in text and "connection refused" in text and ENV[backend] in text


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_a_name_that_does_not_resolve(monkeypatch, backend):
    url = point(monkeypatch, backend, f"http://{NO_SUCH_HOST}:8080")
    text = error_of(backend)
    assert url in text and "does not resolve" in text and ENV[backend] in text


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_a_server_that_answers_too_late(free_port, monkeypatch, backend):
    with FakeServer(free_port) as server:
        server.replies += [{"delay": 5, "text": "too late"}] * 2  # openai tries once more
        url = point(monkeypatch, backend, server.url, ANDINI_REQUEST_TIMEOUT="1")
        text = error_of(backend)
    assert url in text and "did not answer within 1 s" in text and "ANDINI_REQUEST_TIMEOUT" in text


def test_offline_mode_is_named_as_the_cause(free_port, monkeypatch):
    """huggingface_hub reads HF_HUB_OFFLINE once, at import: set both, as a process started with it has."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with FakeServer(free_port) as server:
        point(monkeypatch, "tgi", server.url)
        text = error_of("tgi")
    assert "HF_HUB_OFFLINE" in text and "not sent" in text and server.requests == []
    assert "Nothing answers" not in text


@pytest.mark.parametrize("base,kind", [("http://127.0.0.1:{port}", "refused"),
                                       (f"http://{NO_SUCH_HOST}:8000", "dns")])
def test_chroma_server_errors_name_the_url_and_cause(free_port, monkeypatch, base, kind):
    from retrieval import store

    url = base.format(port=free_port)
    monkeypatch.setenv("ANDINI_CHROMA_URL", url)
    get_settings.cache_clear()
    with pytest.raises(AndiniError) as err:
        store.client()
    text = str(err.value)
    assert url in text and "ANDINI_CHROMA_URL" in text
    assert ("connection refused" if kind == "refused" else "does not resolve") in text
    assert failure(err.value.__cause__).kind == kind


def test_the_issue_reproduction_answers_over_tgi_with_search_first(free_port, tmp_path, andini_home):
    """Issue 12 as a user met it: documents ingested, search-first on, `andini run --backend tgi`. The
    search runs in process (embeddings loaded), then the TGI request must reach the server."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "exporter.md").write_text("# Exporter\n\n## Restart\n\nRestart the exporter with "
                                      "`systemctl restart node-exporter` and check its /metrics page.\n")
    andini = str(Path(sys.executable).with_name("andini"))
    env = {**os.environ, "ANDINI_HOME": str(andini_home), "ANDINI_SEARCH_FIRST": "true"}
    subprocess.run([andini, "ingest", str(docs)], env=env, check=True, capture_output=True, timeout=300)
    with FakeServer(free_port) as server:
        server.replies.append({"text": "Run systemctl restart node-exporter (exporter.md)."})
        done = subprocess.run([andini, "run", "How do I restart the exporter?", "--backend", "tgi", "--json"],
                              env={**env, "ANDINI_TGI_URL": server.url}, capture_output=True, text=True,
                              timeout=300)
    out = json.loads(done.stdout)
    assert out["status"] == "done", out["error"]
    assert "systemctl restart node-exporter" in out["answer"]
    assert [Path(s["source"]).name for s in out["sources"]] == ["exporter.md"]
    assert len(server.requests) == 1 and "node-exporter" in json.dumps(server.requests[0]["messages"])
