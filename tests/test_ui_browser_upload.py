"""A person's path through the app in a real browser: upload a runbook on the Documents page, ask about
it and see it among the Sources, ask for a plan and get its card, then reopen the conversation in a new
browser session and see the same turns, Sources and plan card again (issues 12 and 13).

`andini ui` runs on the TGI backend against the TGI-wire server of tests/agent_support.py, which answers
from a script so that the plan turn is repeatable (SmolLM2-135M rarely chooses make_plan by itself).
Everything else is real: Streamlit in headless Chromium, the upload control, ingest, embeddings, Chroma,
the agent loop, the plan and task stores and the SQLite threads. test_ui_browser.py covers the embedded
model's own answers."""

from __future__ import annotations

import json
import os
import re
import socket
import time

import pytest

from tests.test_ui_browser import _shot, browser_page  # noqa: F401 - a fixture
from tests.ui_process import running_ui

pytestmark = pytest.mark.browser

RUNBOOK = ("# Backup runbook\n\n## Restore\n\nRestore last night's backup with `restic restore latest "
           "--target /srv/app`, then restart the app with `systemctl restart app`.\n")
QUESTION = "How do I restore the backup?"
ANSWER = "Run restic restore latest, then restart the app."
PLAN_REQUEST = "Plan the restore for tonight."
PLAN = {"goal": "Restore the app from last night's backup",
        "steps": [{"title": "Restore the backup", "detail": "restic restore latest --target /srv/app"},
                  {"title": "Restart the app", "detail": "systemctl restart app"}]}


@pytest.fixture
def scripted_ui(model_server, tmp_path):
    """`andini ui --no-ingest` on the TGI backend: the index holds only what the test uploads."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ANDINI_BACKEND": "tgi"}  # ANDINI_TGI_URL: set by model_server
    with running_ui(port, tmp_path / "ui.log", env, "--no-ingest", timeout=90) as url:
        yield url, model_server
    print(f"andini ui log: {tmp_path / 'ui.log'}")


def test_upload_ask_plan_and_reopen_the_conversation(scripted_ui, browser_page, tmp_path):  # noqa: F811
    from agent.tasks import TaskStore

    url, server = scripted_ui
    page = browser_page
    doc = tmp_path / "backup-runbook.md"
    doc.write_text(RUNBOOK)
    timings: dict[str, float] = {}
    try:
        started = time.monotonic()
        upload(page, url, doc)
        timings["upload + ingest"] = time.monotonic() - started

        started = time.monotonic()
        server.replies = [{"text": ANSWER}]
        answer = ask(page, QUESTION, turn=0)
        answer.get_by_text("Sources", exact=True).first.wait_for(timeout=120_000)
        assert "restic restore latest" in json.dumps(server.requests[-1]["messages"])  # it read the upload
        _open_citation(answer, doc.name)
        timings["question"] = time.monotonic() - started

        started = time.monotonic()
        search_first(page, on=True)  # the UI's default: the plan is grounded in what the search found
        server.replies = [{"calls": [("make_plan", PLAN)]}, {"text": "Here is a plan in two steps."}]
        card = plan_card(ask(page, PLAN_REQUEST, turn=1))
        offered = server.requests[-2]
        names = [t["function"]["name"] for t in offered["tools"]]
        assert "make_plan" in names and "search_knowledge_base" not in names  # searched already
        assert offered.get("tool_choice", "auto") == "auto"  # the server chose the plan; it was not forced
        assert "restic restore latest" in json.dumps(offered["messages"])
        timings["plan"] = time.monotonic() - started
        live = chat_texts(page)

        card.get_by_role("button", name="Turn into tasks").click()
        page.get_by_text("Added 2 tasks").wait_for(timeout=30_000)
        assert [t.title for t in TaskStore().list()] == [s["title"] for s in PLAN["steps"]]

        started = time.monotonic()
        reopen(page, url, QUESTION)
        messages = page.get_by_test_id("stChatMessage")
        messages.nth(1).get_by_text("Sources", exact=True).first.wait_for(timeout=60_000)
        plan_card(messages.nth(3))
        _open_citation(messages.nth(1), doc.name)
        timings["reopen"] = time.monotonic() - started
        assert chat_texts(page) == live, "the reopened conversation is drawn as it was live"
        assert not page.get_by_test_id("stException").count()
    except BaseException:
        _shot(page, "upload-plan-failed.png")
        raise
    _shot(page, "upload-plan-reopened.png")
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


def upload(page, url: str, path) -> None:
    """Upload `path` with the Documents page's upload control and ingest it."""
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("link", name="Documents").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    page.get_by_test_id("stFileChip").filter(has_text=path.name).wait_for(timeout=30_000)
    button = page.get_by_role("button", name=re.compile("Ingest uploads"))
    expect(button).to_be_enabled(timeout=30_000)
    button.click()
    page.get_by_text(re.compile(r"^1 added, 0 updated, 0 unchanged, 0 removed · \d+ chunks written$")
                     ).wait_for(timeout=300_000)  # the first ingest loads the embedding model
    page.get_by_text(re.compile(r"^1 documents, \d+ chunks$")).wait_for(timeout=30_000)
    page.get_by_role("link", name="Chat").click()
    page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)


def ask(page, question: str, turn: int):
    """Send `question`; the assistant message of turn `turn` once the run has ended."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(turn * 2 + 1)
    answer.wait_for(timeout=120_000)
    settle(page)
    return answer


def plan_card(message):
    """The plan card in `message`, after checking it shows the plan's goal, its steps and downloads."""
    card = message.get_by_test_id("stVerticalBlock").filter(has_text=f"Plan: {PLAN['goal']}").last
    card.wait_for(timeout=60_000)
    steps = card.get_by_test_id("stCheckbox")
    assert steps.count() == len(PLAN["steps"])
    for i, step in enumerate(PLAN["steps"]):
        assert steps.nth(i).inner_text().split() == f"{step['title']} — {step['detail']}".split()
    assert card.get_by_test_id("stDownloadButton").count() == 2
    return card


def _open_citation(message, name: str) -> None:
    citation = message.get_by_test_id("stExpander").filter(has=message.page.locator("summary", has_text=name))
    citation.first.locator("summary").click()
    citation.first.locator("blockquote").filter(has_text="restic restore latest").wait_for(timeout=10_000)
    citation.first.locator("summary").click()  # closed again, as it was drawn


def search_first(page, on: bool) -> None:
    """Set the sidebar's 'Search the documents first' switch."""
    sidebar = page.get_by_test_id("stSidebar")
    switch = sidebar.get_by_role("switch", name="Search the documents first")
    if not switch.is_visible():
        sidebar.get_by_text("Settings", exact=True).click()
    if switch.is_checked() != on:
        sidebar.get_by_text("Search the documents first").click()
    settle(page)
    assert switch.is_checked() == on


def reopen(page, url: str, title: str) -> None:
    """A new browser session, which knows only the store: open the conversation titled `title`."""
    page.goto(url)
    page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Resume").click()
    page.get_by_role("option", name=title).click()
    page.get_by_test_id("stChatMessage").nth(3).wait_for(timeout=60_000)
    settle(page)


IDLE = "!document.querySelector('[data-testid=stStatusWidget]') && !document.querySelector('[data-stale=true]')"


def settle(page, timeout: float = 120_000) -> None:
    """Wait until no script runs and nothing of an earlier run is still drawn, twice 0.5 s apart (a
    turn ends with a rerun that redraws it from the transcript)."""
    for _ in range(2):
        page.wait_for_function(IDLE, timeout=timeout)
        page.wait_for_timeout(500)
    page.wait_for_function(IDLE, timeout=timeout)


def chat_texts(page) -> list[str]:
    """The text of each chat message, whitespace folded."""
    settle(page)
    return [" ".join(t.split()) for t in page.get_by_test_id("stChatMessage").all_inner_texts()]
