"""Generate: paste or upload a JSON Schema (JSON or YAML), say what the document should hold, and get a
document that validates against it, as JSON or YAML, with the passages it used and how the schema was
held. Calls `agent.generate.generate`; the schema is read by `andini.docschema.load_schema_text`."""

from __future__ import annotations

import streamlit as st

from ui.app import services
from ui.app.render import show_error

EXAMPLE = """type: object
title: service
properties:
  name: {type: string, maxLength: 40}
  port: {type: integer, minimum: 1, maximum: 65535}
  protocol: {enum: [http, https, grpc]}
required: [name, port, protocol]
additionalProperties: false
"""
RESULT = "generate-result"


def _schema_text() -> tuple[str, str]:
    """(text, name): the uploaded file when there is one, else what was pasted."""
    upload = st.session_state.get("generate-upload")
    if upload is not None:
        return upload.getvalue().decode("utf-8", errors="replace"), upload.name
    return st.session_state.get("generate-schema", ""), "pasted schema"


def _generate() -> None:
    from agent.generate import GenerationFailed, generate
    from andini.docschema import load_schema_text

    text, name = _schema_text()
    intent = st.session_state.get("generate-intent", "").strip()
    settings = services.current_settings()
    try:
        doc = load_schema_text(text, name)
        out = generate(doc, intent, yaml=st.session_state.get("generate-format") == "YAML",
                       search=bool(st.session_state.get("generate-search")), backend=settings.backend,
                       model=settings.model, adapter=settings.adapter,
                       attempts=int(st.session_state.get("generate-attempts", 3)),
                       allow_decline=bool(st.session_state.get("generate-decline")))
        st.session_state[RESULT] = {"out": out, "errors": doc.errors(out.document) if out.declined is None else []}
    except GenerationFailed as exc:
        st.session_state[RESULT] = {"failed": exc}
    except Exception as exc:  # noqa: BLE001 - shown to the person, with the fix
        st.session_state[RESULT] = {"error": services.describe_error(exc)}


def show_result(result: dict) -> None:
    if "error" in result:
        show_error(result["error"])
        return
    if "failed" in result:
        exc = result["failed"]
        st.error(f"No valid document after {exc.attempts} attempt(s).")
        st.markdown("\n".join(f"- `{e}`" for e in exc.errors[:10]))
        st.code(exc.last_output or "(empty)", language="json")
        return
    out, errors = result["out"], result["errors"]
    if out.declined is not None:
        st.warning(f"The model declined: {out.declined}")
        return
    tries = "first try" if out.attempts == 1 else f"{out.attempts} attempts"
    if errors:  # generate() only returns validated documents; shown should that ever change
        st.error("Not valid: " + "; ".join(errors))
    else:
        st.success(f"Valid against the schema ({out.enforcement}, {out.backend}, {tries}).")
    for item in out.unenforced:
        st.caption(f"Held by validation and retry only: {item}")
    st.code(out.text, language=out.format)
    suffix = "yaml" if out.format == "yaml" else "json"
    st.download_button(f"Download {suffix.upper()}", out.text, file_name=f"document.{suffix}",
                       mime=f"application/{suffix}", on_click="ignore")
    if out.passages:
        st.markdown("**Passages used**")
        for p in out.passages:
            with st.expander(f"{p.source}" + (f" › {p.heading}" if p.heading else "")):
                st.markdown("> " + p.text.replace("\n", "\n> "))


st.title("Generate a document")
st.caption("A JSON Schema in (draft 2020-12, JSON or YAML), a document that validates against it out.")
left, right = st.columns(2)
with left:
    st.file_uploader("Upload a schema", type=["json", "yaml", "yml"], key="generate-upload")
    st.text_area("…or paste one", value=EXAMPLE, height=260, key="generate-schema")
with right:
    st.text_area("What should the document say?", key="generate-intent",
                 placeholder="A web service called shop on port 8443 over https")
    st.radio("Format", ("JSON", "YAML"), horizontal=True, key="generate-format")
    st.checkbox("Ground it in my documents", key="generate-search")
    st.checkbox("Let the model decline when the schema cannot say it", key="generate-decline")
    st.number_input("Attempts", min_value=1, max_value=5, value=3, key="generate-attempts")
    st.button("Generate", type="primary", on_click=_generate,
              disabled=not st.session_state.get("generate-intent", "").strip())
if (result := st.session_state.get(RESULT)) is not None:
    show_result(result)
