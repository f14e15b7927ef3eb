"""The settings sidebar: backend and URL, model and adapter, retrieval mode and k, temperature, and a
health line. Changes apply to this browser session only (the environment and config.toml stay as they are).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from agent.backends import BACKENDS
from andini.errors import AndiniError
from andini.settings import get_settings
from ui.app import services
from ui.app.render import show_error

MODES = ("hybrid", "dense", "bm25")


def _widget_default(name: str) -> Any:
    return services.overrides().get(name, getattr(get_settings(), name))


def _store(name: str) -> None:
    """Widget callback: keep the value as an override; an emptied text field means 'the default'."""
    value = st.session_state[f"set_{name}"]
    if isinstance(value, str):
        value = value.strip() or None
    base = getattr(get_settings(), name)
    if value == base or (value is None and name not in ("model", "adapter")):
        services.overrides().pop(name, None)
    else:
        services.overrides()[name] = value


def _field(widget, name: str, label: str, **kwargs: Any) -> None:
    key = f"set_{name}"
    if key not in st.session_state:
        value = _widget_default(name)
        st.session_state[key] = "" if value is None and widget is st.text_input else value
    widget(label, key=key, on_change=_store, args=(name,), **kwargs)


def render_settings() -> None:
    """Draw the settings sidebar and the health line."""
    with st.sidebar:
        _summary_and_health()
        with st.expander("Settings", icon=":material/tune:"):
            _field(st.selectbox, "backend", "Model backend", options=list(BACKENDS),
                   format_func=lambda name: BACKENDS[name].label)
            spec = BACKENDS[st.session_state["set_backend"]]
            if spec.url_field:
                _field(st.text_input, spec.url_field, f"{spec.server} URL")
            _field(st.text_input, "model", "Model", placeholder="backend default",
                   help="A local model folder, or the model id a server serves. Empty: the default.")
            _field(st.text_input, "adapter", "LoRA adapter", placeholder="none",
                   help="A local adapter folder (local backend) or the adapter id TGI serves.")
            _field(st.selectbox, "search_mode", "Retrieval mode", options=list(MODES))
            _field(st.number_input, "search_k", "Passages to retrieve (k)", min_value=1, max_value=50, step=1)
            _field(st.slider, "temperature", "Temperature", min_value=0.0, max_value=2.0, step=0.1)
            st.toggle("Search the documents first", key=services.SEARCH_FIRST_KEY, value=True,
                      help="Start every turn with a search of your documents, so answers cite them.")


def _summary_and_health() -> None:
    try:
        settings = services.current_settings()
    except AndiniError as exc:
        show_error(str(exc))
        return
    url = BACKENDS[settings.backend].url(settings) or "in-process"
    st.caption(f"Using **{settings.backend}** ({url}) · model `{settings.model or 'default'}` · "
               f"adapter `{settings.adapter or 'none'}` · {settings.search_mode} k={settings.search_k} · "
               f"T={settings.temperature:g}")
    checks = services.health()
    for name, (ok, detail) in (("Model", checks["model"]), ("Chroma", checks["chroma"])):
        short = detail if len(detail) <= 90 else detail[:87] + "…"
        st.caption(f":{'green' if ok else 'red'}[●] **{name}**: {short}", help=detail)
    job = services.docs_ingest_job()
    if job is not None:
        # Re-drawn every 2 s while the project docs are indexed; a fragment never interrupts a chat turn.
        st.fragment(_docs_status, run_every=None if job.done else 2)(job)


def _docs_status(job: services.DocsIngest) -> None:
    if job.failed:
        st.caption(f":orange[●] {job.note}")
    else:
        st.caption(f"{':green[●]' if job.done else ':blue[●]'} {job.note}")
