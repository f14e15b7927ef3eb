"""Documents: upload files or point at a folder, ingest them with a progress bar, see and remove what is
indexed. Ingesting is `retrieval.ingest.ingest` (incremental: unchanged files are skipped)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from andini.settings import get_settings
from ui.app import services
from ui.app.render import show_error

TYPES = ["md", "txt", "pdf", "html", "htm"]


def save_uploads(files: list) -> list[Path]:
    """Uploaded files, written under $ANDINI_HOME/uploads so they can be re-ingested and cited."""
    folder = get_settings().home / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for upload in files:
        path = folder / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        paths.append(path)
    return paths


def ingest_with_progress(paths: list[Path]) -> None:
    """Ingest `paths`, drawing a progress bar, then the report (errors name the file and the reason)."""
    from retrieval.ingest import ingest

    bar = st.progress(0.0, text="Starting…")

    def progress(done: int, total: int, name: str) -> None:
        bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{done}/{total} · {Path(name).name}")

    try:
        report = ingest(paths, progress=progress)
    except Exception as exc:  # noqa: BLE001 - shown with its fix; nothing already indexed is lost
        bar.empty()
        show_error(services.describe_error(exc))
        return
    bar.progress(1.0, text="Done")
    summary = (f"{report.files_added} added, {report.files_updated} updated, {report.files_unchanged} "
               f"unchanged, {report.files_removed} removed · {report.chunks_written} chunks written")
    (st.success if report.ok else st.warning)(summary)
    for err in report.errors:
        st.error(f"{err.path}: {err.reason}")


def add_documents() -> None:
    st.subheader("Add documents")
    left, right = st.columns(2)
    with left:
        files = st.file_uploader("Upload files", type=TYPES, accept_multiple_files=True)
        if st.button("Ingest uploads", disabled=not files, icon=":material/upload:"):
            ingest_with_progress(save_uploads(files))
    with right:
        folder = st.text_input("Or a folder (or file) on this machine", placeholder="/path/to/docs")
        if st.button("Ingest folder", disabled=not folder.strip(), icon=":material/folder_open:"):
            path = Path(folder.strip()).expanduser()
            if path.exists():
                ingest_with_progress([path])
            else:
                show_error(f"No such file or folder: {path}\n  fix: give a path that exists on the machine "
                         "running andini")


def _remove(source: str) -> None:
    from retrieval.store import remove_document

    try:
        removed = remove_document(source)
        st.session_state["doc_note"] = f"Removed {Path(source).name} ({removed} chunks)."
    except Exception as exc:  # noqa: BLE001
        st.session_state["doc_note"] = services.describe_error(exc)


def indexed_documents() -> None:
    st.subheader("Indexed")
    from retrieval.store import list_documents

    try:
        docs = list_documents()
    except Exception as exc:  # noqa: BLE001
        show_error(services.describe_error(exc))
        return
    if note := st.session_state.pop("doc_note", None):
        st.info(note)
    if not docs:
        st.caption("Nothing indexed yet: upload files or give a folder above.")
        return
    st.dataframe([{"document": d.source, "chunks": d.chunks, "last ingest": d.ingested_at} for d in docs],
                 hide_index=True)
    st.caption(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    choice = left.selectbox("Remove a document", [d.source for d in docs], index=None,
                            placeholder="Pick a document")
    right.button("Remove", disabled=choice is None, on_click=_remove, args=(choice,),
                 icon=":material/delete:")


st.title("Documents")
add_documents()
indexed_documents()
