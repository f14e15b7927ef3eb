"""The settings sidebar: backend and URL, model and adapter, retrieval mode and k, temperature, and a
health line. Changes apply to this browser session only (the environment and config.toml stay as they are).

The adapter is a menu on the local backend (newest for the model, each registered adapter, none, or
another folder) and a text field for a server's adapter id; the summary names the one that answers and,
when none does, how to train it.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from agent.backends import BACKENDS
from andini.adapters import AdapterChoice, explicit, is_off, train_hint
from andini.errors import AndiniError
from andini.settings import get_settings
from ui.app import services
from ui.app.render import show_error

MODES = ("hybrid", "dense", "bm25")
#: The adapter menu's entries beside the registered names.
NEWEST, NONE, FOLDER = ":newest", ":none", ":folder"


def _widget_default(name: str) -> Any:
    return services.overrides().get(name, getattr(get_settings(), name))


def _store(name: str) -> None:
    """Widget callback: keep the value as an override; an emptied text field means 'the default'."""
    value = st.session_state[f"set_{name}"]
    if isinstance(value, str):
        value = value.strip() or None
    if name == "adapter" and value is None and st.session_state.get("adapter_pick") == FOLDER:
        value = "none"  # an emptied folder field: no adapter, as the menu still says 'another folder'
    _override(name, value)


def _override(name: str, value: Any) -> None:
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
            _adapter_field(spec.in_process)
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
    spec = BACKENDS[settings.backend]
    try:
        active: AdapterChoice | None = services.active_adapter(settings)
    except AndiniError as exc:  # e.g. ANDINI_ADAPTER names no adapter: say so, keep the page
        active = None
        show_error(str(exc))
    shown = (active.name or active.adapter) if active and active.adapter else "none"
    st.caption(f"Using **{settings.backend}** ({spec.url(settings) or 'in-process'}) · model "
               f"`{settings.model or 'default'}` · adapter `{shown}` · {settings.search_mode} "
               f"k={settings.search_k} · T={settings.temperature:g}")
    hint = train_hint(active) if active and spec.in_process else None
    if hint:
        st.info(hint.replace("\n    ", "\n\n    "), icon=":material/school:")
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


def _adapter_field(local: bool) -> None:
    """Local: a menu of the registered adapters (the folder field only for 'another folder'); a server:
    the adapter id it serves."""
    if not local:
        _field(st.text_input, "adapter", "LoRA adapter id", placeholder="none",
               help="The adapter id the server serves (TGI: a name given to --lora-adapters).")
        return
    adapters = {a.name: a for a in services.registered_adapters() if a.problem is None}
    value = _widget_default("adapter")
    if "adapter_pick" not in st.session_state:
        st.session_state["adapter_pick"] = (NEWEST if value is None else NONE if is_off(value)
                                            else value if value in adapters else FOLDER)
    newest = _newest_label()
    labels = {NEWEST: newest, NONE: "None (the base model)", FOLDER: "Another folder…",
              **{name: info.label() for name, info in adapters.items()}}
    st.selectbox("LoRA adapter", options=[NEWEST, *adapters, NONE, FOLDER], key="adapter_pick",
                 format_func=labels.__getitem__, on_change=_pick_adapter,
                 help="Registered adapters live under $ANDINI_HOME/adapters (`andini finetune` adds each "
                      "one it trains). Tool calls need one: the untuned model calls tools poorly.")
    if st.session_state["adapter_pick"] == FOLDER:
        typed = value if value and not is_off(value) and value not in adapters else ""
        st.session_state.setdefault("set_adapter", typed)
        _field(st.text_input, "adapter", "Adapter folder", placeholder="/path/to/adapter",
               help="A folder with adapter_config.json, as `andini finetune` writes it.")


def _newest_label() -> str:
    try:
        settings = services.current_settings()
        newest = services.active_adapter(settings.model_copy(update={"adapter": None}))
    except AndiniError:
        return "Newest for this model"
    return f"Newest for this model ({newest.name or 'none trained yet'})"


def _pick_adapter() -> None:
    pick = st.session_state["adapter_pick"]
    if pick == FOLDER:  # the folder field sets it; until then keep a typed folder, else the base model
        typed = explicit(st.session_state.get("set_adapter"))
        _override("adapter", typed or "none")
        return
    _override("adapter", None if pick == NEWEST else "none" if pick == NONE else pick)
