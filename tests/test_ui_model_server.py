"""The path the product exists for, in-process: the documents are searched first, then a model server
answers (TGI's wire format, or an OpenAI-compatible server), with the environment the app image sets.

`andini ui` in headless Chromium and `andini run` as a subprocess, each against the TGI-wire server of
tests/agent_support.py (TGI itself needs a GPU; the client side is the real one). The server is stopped
mid-session: the turn names the URL and the cause, the conversation stays usable, and the next turn
answers once the server is back. Chroma, the embeddings and SQLite are the real ones."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.agent_support import FakeServer
from tests.test_ui_browser import _shot, browser_page  # noqa: F401 - a fixture
from tests.ui_process import ANDINI, running_ui

REPO = Path(__file__).resolve().parent.parent
RUNBOOK = "# Exporter runbook\n\n## Restart\n\nRestart the exporter with `systemctl restart exporter`, then " \
          "check its metrics page on port 9100.\n"
ANSWER = "Restart it with systemctl restart exporter."
URL_SETTING = {"tgi": "ANDINI_TGI_URL", "openai": "ANDINI_OPENAI_URL"}


def image_environment() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage, less what names container paths (PATH, ANDINI_HOME)."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[1]
    pairs: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            pairs.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return {k: v for k, v in pairs.items() if k not in ("PATH", "ANDINI_HOME")}


@pytest.fixture
def app_env(andini_home, tmp_path, free_port) -> dict[str, str]:
    """The image's environment, search-first on, a runbook ingested into this test's ANDINI_HOME."""
    doc = tmp_path / "docs" / "exporter.md"
    doc.parent.mkdir()
    doc.write_text(RUNBOOK)
    env = {**os.environ, **image_environment(), "ANDINI_SEARCH_FIRST": "true", "ANDINI_MAX_NEW_TOKENS": "64",
           "ANDINI_TGI_URL": f"http://127.0.0.1:{free_port}",
           "ANDINI_OPENAI_URL": f"http://127.0.0.1:{free_port}/v1"}
    done = subprocess.run([str(ANDINI), "ingest", str(doc.parent)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def test_the_image_sets_no_offline_switch():
    """huggingface_hub's offline mode refuses requests to localhost too (issue 12): the image must not set it."""
    env = image_environment()
    assert not {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} & set(env), env
    assert env.get("ANDINI_API_HOST") == "0.0.0.0"


def run_turn(env: dict[str, str], backend: str, thread: str | None = None) -> dict:
    cmd = [str(ANDINI), "run", "How do I restart the exporter?", "--backend", backend, "--json"]
    done = subprocess.run(cmd + (["--thread", thread] if thread else []), env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


def test_andini_run_answers_from_the_documents_and_survives_a_server_stop(app_env, free_port):
    backend = "openai"  # the UI test below takes TGI's wire; between them both clients are covered
    url = app_env[URL_SETTING[backend]]
    with FakeServer(free_port) as server:
        server.replies = [{"text": ANSWER}]
        first = run_turn(app_env, backend)
        assert first["status"] == "done", first
        assert first["answer"].strip() == ANSWER
        assert [c["call"]["name"] for c in first["tool_calls"]] == ["search_knowledge_base"]
        assert first["sources"] and first["sources"][0]["source"].endswith("exporter.md")
        sent = json.dumps(server.requests[-1]["messages"])
        assert "systemctl restart exporter" in sent  # the model was given the passage it cites
    thread = first["thread_id"]

    down = run_turn(app_env, backend, thread)  # the server is gone
    assert down["status"] == "error"
    assert url in down["error"] and "connection refused" in down["error"], down["error"]

    with FakeServer(free_port) as server:
        server.replies = [{"text": ANSWER}]
        again = run_turn(app_env, backend, thread)
    assert again["status"] == "done" and again["thread_id"] == thread and again["sources"], again
    history = json.dumps(server.requests[-1]["messages"])
    assert history.count("How do I restart the exporter?") >= 2  # the earlier turns are still there


@pytest.fixture
def ui(app_env, tmp_path):
    """`andini ui` on its own port with the app environment; the model server is the test's to start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with running_ui(port, tmp_path / "ui.log", app_env, "--no-ingest", timeout=90) as url:
        yield url
    print(f"andini ui log: {tmp_path / 'ui.log'}")


def ask(page, question: str, turn: int):
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(turn * 2 + 1)
    answer.wait_for(timeout=120_000)
    return answer


@pytest.mark.browser
def test_ui_answers_through_a_model_server_and_survives_its_stop(app_env, free_port, request):
    backend = app_env["ANDINI_BACKEND"] = "tgi"  # set before the `ui` fixture starts the app with it
    url = app_env[URL_SETTING[backend]]
    server_ui = request.getfixturevalue("ui")
    page = request.getfixturevalue("browser_page")

    try:
        with FakeServer(free_port) as server:
            server.replies = [{"text": ANSWER}]
            page.goto(server_ui)
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            first = ask(page, "How do I restart the exporter?", 0)
            first.get_by_text("Sources", exact=True).first.wait_for(timeout=180_000)
            assert first.get_by_text("systemctl restart exporter").count() >= 1
            assert first.locator("summary", has_text="exporter.md").count() >= 1

        down = ask(page, "And how do I check it?", 1)  # the server has stopped
        alert = down.get_by_test_id("stAlert").filter(has_text="connection refused").first
        alert.wait_for(timeout=180_000)
        text = alert.inner_text()
        assert url in text and "connection refused" in text, text
        assert page.get_by_test_id("stChatMessage").nth(1).get_by_text("Sources", exact=True).count()

        with FakeServer(free_port) as server:
            server.replies = [{"text": ANSWER}]
            back = ask(page, "How do I restart the exporter?", 2)
            back.get_by_text("Sources", exact=True).first.wait_for(timeout=180_000)
            assert server.requests, "the turn after the restart reached the server"
        assert not page.get_by_test_id("stException").count()
    except BaseException:
        _shot(page, f"model-server-{backend}-failed.png")
        raise
    _shot(page, f"model-server-{backend}.png")
