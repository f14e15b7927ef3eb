"""Ingest: files and folders -> chunks in Chroma, incrementally and safely.

A file's chunk ids are derived from its path, its content hash, the chunk's index and the chunking
settings, so writing them again is idempotent. Per file: if every stored chunk carries the current hash and the count is
complete, nothing is written; otherwise the missing chunks are embedded and upserted first and the
stale ones (an older hash) deleted after. A run killed at any point therefore leaves either the old or
the new version (or both, until the next run), and the next run ends with exactly one copy of each chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from andini.settings import Settings, get_settings
from retrieval import bm25, store
from retrieval.chunking import chunk_document
from retrieval.loaders import LoadError, discover, file_hash, load_document

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

BATCH = 64  # chunks embedded and upserted per call
Progress = Callable[[int, int, str], None]


class FileError(BaseModel):
    """A file that was skipped, and why."""

    path: str = Field(description="The file or folder as given or found.")
    reason: str = Field(description="Why it was skipped, in words a person can act on.")


class IngestReport(BaseModel):
    """What one ingest run did."""

    collection: str = Field("", description="The Chroma collection written to.")
    files_added: int = Field(0, description="Files ingested for the first time.")
    files_updated: int = Field(0, description="Files whose content changed: their chunks were replaced.")
    files_unchanged: int = Field(0, description="Files already stored with the same content: nothing written.")
    files_removed: int = Field(0, description="Documents pruned because their file is gone.")
    chunks_written: int = Field(0, description="Chunks embedded and upserted.")
    chunks_deleted: int = Field(0, description="Stale or pruned chunks deleted.")
    errors: list[FileError] = Field(default_factory=list, description="Files skipped, with the reason.")

    @property
    def ok(self) -> bool:
        return not self.errors


def chunk_id(source: str, content_hash: str, index: int, chunker: str) -> str:
    return hashlib.sha256(f"{source}\0{content_hash}\0{index}\0{chunker}".encode()).hexdigest()[:32]


def chunker_signature(settings: Settings) -> str:
    """What decides how a file is cut and embedded: a change re-chunks every file on the next ingest."""
    return f"{settings.chunk_size}/{settings.chunk_overlap}/{settings.embed_model}"


def ingest(paths: list[Path], collection: str | None = None, prune: bool = False,
           progress: Progress | None = None, settings: Settings | None = None) -> IngestReport:
    """Ingest `paths` (files and folders) into `collection`. With `prune`, documents under the given
    folders (or equal to a given file) whose files no longer exist or are no longer found are removed."""
    settings = settings or get_settings()
    files, problems = discover([Path(p) for p in paths])
    report = IngestReport(collection=store.collection_name(collection, settings),
                          errors=[FileError(path=str(p), reason=r) for p, r in problems])
    coll = store.get_collection(collection, settings)
    stored = _stored_chunks(coll)
    chunker = chunker_signature(settings)
    marked = False
    for i, path in enumerate(files):
        if progress:
            progress(i, len(files), str(path))
        old = stored.pop(str(path), {})
        try:
            data = path.read_bytes()
            if _is_complete(old, file_hash(data), chunker):
                report.files_unchanged += 1
                continue
            if not marked:  # before the first write, so an interrupted run still invalidates BM25
                store.bump_generation(coll)
                marked = True
            written, deleted = _write_file(coll, path, data, old, settings, chunker)
        except (LoadError, OSError) as exc:
            report.errors.append(FileError(path=str(path), reason=str(exc) if isinstance(exc, LoadError)
                                           else f"cannot read: {exc.strerror or exc}"))
            continue
        report.chunks_written += written
        report.chunks_deleted += deleted
        if old:
            report.files_updated += 1
        else:
            report.files_added += 1
    if progress:
        progress(len(files), len(files), "")
    if prune:
        gone = {src: ids for src, ids in stored.items() if _in_scope(src, paths)}
        if gone and not marked:
            store.bump_generation(coll)
            marked = True
        for ids in gone.values():
            coll.delete(ids=list(ids))
            report.chunks_deleted += len(ids)
        report.files_removed = len(gone)
    if marked:
        store.bump_generation(coll)  # after the last write: readers that rebuilt meanwhile rebuild again
        bm25.build(coll, settings)
    return report


def _stored_chunks(coll: Collection) -> dict[str, dict[str, dict]]:
    """{source: {chunk id: metadata}} for the whole collection, read once."""
    stored: dict[str, dict[str, dict]] = {}
    for cid, meta, _ in store.iter_metadata(coll):
        stored.setdefault(meta["source"], {})[cid] = meta
    return stored


def _is_complete(old: dict[str, dict], current_hash: str, chunker: str) -> bool:
    return bool(old) and all(m.get("file_hash") == current_hash and m.get("n_chunks") == len(old)
                             and m.get("chunker") == chunker for m in old.values())


def _write_file(coll: Collection, path: Path, data: bytes, old: dict[str, dict],
                settings: Settings, chunker: str) -> tuple[int, int]:
    """Upsert the file's missing chunks, then delete its stale ones. Returns (written, deleted)."""
    from retrieval.embed import embed

    doc = load_document(path, data)
    chunks = chunk_document(doc, settings)
    if not chunks:
        raise LoadError("no text to index")
    source, now = str(path), datetime.now(UTC).isoformat(timespec="seconds")
    ids = [chunk_id(source, doc.file_hash, c.index, chunker) for c in chunks]
    todo = [(cid, c) for cid, c in zip(ids, chunks, strict=True) if cid not in old]
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        coll.upsert(
            ids=[cid for cid, _ in batch],
            documents=[c.text for _, c in batch],
            embeddings=embed([bm25.index_text(c.text, c.heading) for _, c in batch], settings),
            metadatas=[{"source": source, "heading": c.heading, "start": c.start, "end": c.end,
                        "chunk_index": c.index, "n_chunks": len(chunks), "file_hash": doc.file_hash,
                        "chunk_hash": c.content_hash, "chunker": chunker, "format": doc.format,
                        "title": doc.title,
                        "ingested_at": now} for _, c in batch],
        )
    stale = sorted(set(old) - set(ids))
    if stale:
        coll.delete(ids=stale)
    return len(todo), len(stale)


def _in_scope(source: str, paths: list[Path]) -> bool:
    """Whether `source` lies under one of the given folders or is one of the given files."""
    src = Path(source)
    for given in paths:
        root = Path(given).expanduser().resolve()
        if src == root or root in src.parents:
            return True
    return False
