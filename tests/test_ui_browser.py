"""End to end in a real browser: `andini ui` on a free port with the real local model and the project
docs, driven by Debian's headless Chromium through Playwright (which never downloads a browser here).

Screenshots land in artifacts/ui/ (their paths are printed) so a person can look at them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.ui_process import running_ui

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "artifacts" / "ui"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def ui_server(free_port, tmp_path, monkeypatch):
    """`andini ui` in its own process group, stopped (with its children) after the test."""
    # Short answers keep the turn quick on a CPU; the behaviour under test is the same.
    monkeypatch.setenv("ANDINI_MAX_NEW_TOKENS", "48")
    with running_ui(free_port, tmp_path / "ui.log", os.environ.copy()) as url:
        yield url
    print(f"andini ui log: {tmp_path / 'ui.log'}")


@pytest.fixture
def browser_page(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _shot(page, name: str) -> Path:
    """A screenshot of the whole page: Streamlit scrolls inside its main area, so grow the window to it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    height = page.evaluate("document.querySelector('[data-testid=stMain]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height) + 120, 6000))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_ask_in_the_browser_and_get_a_cited_answer(ui_server, browser_page):
    page = browser_page
    try:
        _ask_and_check_the_answer(page, ui_server)
    except BaseException:
        _shot(page, "chat-failed.png")
        raise
    _shot(page, "chat.png")
    try:
        _reopen_the_conversation(page, ui_server)
    except BaseException:
        _shot(page, "chat-reopened-failed.png")
        raise
    _shot(page, "chat-reopened.png")

    page.get_by_role("link", name="Documents").click()
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
    # The table is drawn on a canvas; its caption says what was indexed on first start.
    page.get_by_text(re.compile(r"^\d+ documents, \d+ chunks$")).wait_for(timeout=30_000)
    _shot(page, "documents.png")
    assert not page.get_by_test_id("stException").count()


def _ask_and_check_the_answer(page, url: str) -> None:
    page.goto(url)
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=60_000)
    # First start: the project docs are indexed in the background; ask once they are searchable.
    page.get_by_text("Project docs indexed").wait_for(timeout=900_000)
    box.fill("How do I start the chat UI?")
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    # .first: while Streamlit swaps the streamed text for the final render, a stale copy can linger
    answer.get_by_text("Sources", exact=True).first.wait_for(timeout=900_000)
    assert answer.get_by_test_id("stExpander").count() >= 1  # at least one tool step or citation
    _open_a_citation(page, answer)
    assert not page.get_by_test_id("stException").count()


def _reopen_the_conversation(page, url: str) -> None:
    """A new browser session knows only the store: the reopened thread shows its tool step and sources."""
    page.goto(url)
    page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Resume").click()
    page.get_by_role("option", name="How do I start the chat UI?").click()
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("Sources", exact=True).first.wait_for(timeout=60_000)
    assert answer.get_by_text("Tool: search_knowledge_base").count() >= 1
    _open_a_citation(page, answer)
    assert not page.get_by_test_id("stException").count()


def _open_a_citation(page, answer) -> None:
    """Expand the answer's first document source and see its quoted passage.

    A finished turn ends with a rerun that draws the saved message again, its expanders closed: a click
    that lands just before it opens the copy being replaced (CI saw the passage stay hidden). So wait
    until the app stops running, and click again while the expander is still closed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.get_by_test_id("stStatusWidgetRunningIcon").wait_for(state="hidden", timeout=120_000)
    citation = answer.get_by_test_id("stExpander").filter(has=page.locator("summary", has_text=".md")).first
    passage = citation.locator("blockquote").first
    for _ in range(5):
        if citation.get_by_test_id("stExpanderDetails").get_attribute("inert") is not None:  # closed
            citation.locator("summary").click()
        try:
            passage.wait_for(timeout=4_000)
            return
        except PlaywrightTimeout:
            continue
    passage.wait_for(timeout=1_000)  # still hidden after five tries: fail with Playwright's own message
