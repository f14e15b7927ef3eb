"""What the pages share: the effective settings, the cached agent, health checks and the first-start ingest.

Everything here calls a public function of agent/, retrieval/ or eval/; the UI adds caching and nothing
else. Heavy packages are imported inside the functions, so a page that does not need them stays fast.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import streamlit as st
from pydantic import ValidationError

from agent.backends import get_backend
from andini.adapters import AdapterChoice, AdapterInfo
from andini.errors import AndiniError
from andini.settings import Settings, get_settings

#: The fields the sidebar lets a person change for this browser session.
EDITABLE = ("backend", "tgi_url", "openai_url", "model", "adapter", "search_mode", "search_k", "temperature")
OVERRIDES_KEY = "settings_overrides"


def bundled_docs_dir() -> Path | None:
    """The repository's docs/ folder (the demo's knowledge base), or None when installed without it."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    return docs if docs.is_dir() and any(docs.glob("*.md")) else None


def overrides() -> dict[str, Any]:
    """This session's changes to the settings, by field name."""
    return st.session_state.setdefault(OVERRIDES_KEY, {})


def current_settings() -> Settings:
    """The process settings with this session's overrides applied (validated like the environment)."""
    base = get_settings()
    changed = {k: v for k, v in overrides().items() if k in EDITABLE}
    if not changed:
        return base
    try:
        return Settings(**{**base.model_dump(include={"home"}), **changed})
    except ValidationError as exc:
        raise AndiniError(f"Invalid setting: {exc.errors()[0]['msg']}",
                          hint="correct the value in the sidebar") from exc


def settings_key(settings: Settings) -> str:
    """A hashable fingerprint of the fields that change which agent answers."""
    return settings.model_dump_json(include=set(EDITABLE) | {"home", "max_new_tokens", "collection"})


SEARCH_FIRST_KEY = "search_first"


def search_first() -> bool:
    """Whether each turn starts with a document search (the sidebar switch; on by default): a small
    local model rarely decides to search by itself, and answers should rest on the documents."""
    return bool(st.session_state.get(SEARCH_FIRST_KEY, True))


@st.cache_resource(show_spinner="Loading the model (first time only)…")
def _load_local_model(model: str | None, adapter: str | None) -> bool:
    # agent/ keeps loaded weights per (model, adapter) for the process; this only loads them under a spinner.
    from agent.local import get_engine

    get_engine(model, adapter)
    return True


@st.cache_resource(show_spinner=False, scope="session", max_entries=4)
def _agent_for(key: str, _settings: Settings, first_search: bool) -> Any:
    return build_agent(_settings, first_search)


def build_agent(settings: Settings, first_search: bool = True) -> Any:
    """An agent for these settings; one per browser session, so concurrent turns never share state."""
    from agent.run import Agent

    options = {"search_first": True} if first_search else {}
    return Agent(settings=settings, **options)


def get_agent() -> Any:
    """The agent for the current settings, the local model loaded first (behind a spinner)."""
    settings = current_settings()
    adapter = active_adapter(settings).adapter
    if get_backend(settings.backend, settings).in_process:
        _load_local_model(settings.model, adapter)
    # keyed by the adapter too: one trained while the app runs is picked up by the next turn
    return _agent_for(f"{settings_key(settings)}|{adapter}", settings, search_first())


def active_adapter(settings: Settings) -> AdapterChoice:
    """The adapter the agent uses with these settings (unset: the newest registered for the model)."""
    from agent.backends import served_adapter

    return served_adapter(settings)


def registered_adapters() -> list[AdapterInfo]:
    """The adapters under $ANDINI_HOME/adapters, newest first (read each time: training adds them)."""
    from andini.adapters import list_adapters

    return list_adapters(get_settings().home)


@st.cache_data(ttl=20, show_spinner=False)
def _health(key: str, _settings: Settings) -> dict[str, tuple[bool, str]]:
    return {"model": model_health(_settings), "chroma": chroma_health()}


def health() -> dict[str, tuple[bool, str]]:
    """Whether the model backend and Chroma answer, re-checked at most every 20 seconds."""
    settings = current_settings()
    return _health(settings_key(settings), settings)


def model_health(settings: Settings) -> tuple[bool, str]:
    try:
        from agent import health as agent_health

        report = agent_health(settings)
    except ImportError as exc:
        return False, f"agent package unavailable ({exc})"
    except Exception as exc:  # a health probe reports; it never breaks the page
        return False, str(exc)
    ok = bool(report.get("ok", report.get("reachable", False)))
    detail = report.get("detail") or report.get("message") or report.get("error") or settings.backend
    return ok, str(detail)


def chroma_health() -> tuple[bool, str]:
    try:
        from retrieval.store import health as store_health

        return store_health()
    except ImportError as exc:
        return False, f"retrieval package unavailable ({exc})"
    except Exception as exc:
        return False, str(exc)


class DocsIngest:
    """The first-start ingest of the project docs, in a background thread so the page draws at once.

    Incremental (unchanged files are skipped), so it runs on every start and costs a second afterwards.
    """

    def __init__(self, docs: Path):
        self.docs = docs
        self.done = False
        self.failed = False
        self.note = "Indexing the project docs…"
        self._thread = threading.Thread(target=self._run, name="andini-docs-ingest", daemon=True)
        self._thread.start()

    def _progress(self, done: int, total: int, name: str) -> None:
        self.note = f"Indexing the project docs… {done}/{total}"

    def _run(self) -> None:
        try:
            from retrieval.ingest import ingest

            report = ingest([self.docs], progress=self._progress)
            self.note = (f"Project docs indexed ({report.files_added} added, {report.files_updated} "
                         f"updated, {report.files_unchanged} unchanged).")
        except Exception as exc:  # noqa: BLE001 - the app works without them; the sidebar says why
            self.failed = True
            self.note = f"Could not index the project docs: {describe_error(exc)}"
        finally:
            self.done = True

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


@st.cache_resource(show_spinner=False)
def docs_ingest(home: str) -> DocsIngest | None:
    """The one ingest job per server process and ANDINI_HOME (None when there are no bundled docs)."""
    docs = bundled_docs_dir()
    return DocsIngest(docs) if docs is not None else None


def docs_ingest_job() -> DocsIngest | None:
    """The bundled-docs job, started on first use; None with `andini ui --no-ingest` or without docs."""
    if "--no-ingest" in sys.argv:
        return None
    return docs_ingest(str(get_settings().home))


def describe_error(exc: BaseException) -> str:
    """One message a person can act on, for any exception a page catches."""
    if isinstance(exc, AndiniError):
        return str(exc)
    if isinstance(exc, ImportError):
        return f"A part of andini is missing: {exc}\n  fix: reinstall with `make setup`"
    return (f"Unexpected error: {type(exc).__name__}: {exc}\n"
            "  fix: check the health line in the sidebar; set ANDINI_DEBUG=1 for the full traceback")
