"""The Chroma store: embedded on disk under $ANDINI_HOME/chroma, or a Chroma server when
`ANDINI_CHROMA_URL` is set. Every collection is opened with andini's own embedding function.

Each chunk's metadata carries its document's path (`source`), heading path, character span
(`start`, `end`), the document's content hash (`file_hash`) and chunk count (`n_chunks`), the chunk's
own hash and the ingest time. The collection's metadata holds a `generation` that changes on every
write, so the BM25 index (kept outside Chroma) knows when it is out of step.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from andini.errors import AndiniError
from andini.settings import Settings, get_settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

PAGE = 5000  # rows per `get` when reading a whole collection
#: chromadb's first client in a process is not safe to create from several threads at once (concurrent
#: first searches in `andini serve` got "Could not connect to tenant"); later ones come from its cache.
_CLIENT_LOCK = threading.Lock()
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


class DocumentInfo(BaseModel):
    """One ingested document, as the Documents page lists it."""

    source: str = Field(description="Path of the document.")
    chunks: int = Field(description="Chunks stored for it.")
    ingested_at: datetime | None = Field(None, description="When its chunks were last written (UTC).")
    file_hash: str = Field("", description="SHA-256 of the file's bytes when it was ingested.")


def client(settings: Settings | None = None) -> ClientAPI:
    """A Chroma client: HttpClient for `settings.chroma_url`, else a PersistentClient under home."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = settings or get_settings()
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            with _CLIENT_LOCK:
                return chromadb.HttpClient(host=url.hostname or "127.0.0.1",
                                           port=url.port or (443 if url.scheme == "https" else 8000),
                                           ssl=url.scheme == "https", settings=chroma_settings)
        except Exception as exc:
            raise chroma_error(settings.chroma_url, exc) from exc
    path = settings.home / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    with _CLIENT_LOCK:
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def chroma_error(url: str, exc: BaseException) -> AndiniError:
    """A failed request to the Chroma server, naming the URL and the real cause (andini.http_errors)."""
    from andini.http_errors import failure, server_error

    error = server_error("Chroma", url, "ANDINI_CHROMA_URL", exc)
    if failure(exc).kind == "refused":
        error.hint = ("start one with `chroma run --path DIR --host 127.0.0.1 --port PORT`, "
                      "or unset ANDINI_CHROMA_URL to use the embedded store")
    return error


def collection_name(collection: str | None, settings: Settings | None = None) -> str:
    name = collection or (settings or get_settings()).collection
    if not _NAME.match(name) or ".." in name:
        raise AndiniError(f"invalid collection name {name!r}",
                          hint="use 3-512 characters from a-z, A-Z, 0-9, '.', '_' and '-', "
                               "starting and ending with a letter or digit")
    return name


@overload
def get_collection(collection: str | None = None, settings: Settings | None = None,
                   create: Literal[True] = True) -> Collection: ...
@overload
def get_collection(collection: str | None, settings: Settings | None, create: bool) -> Collection | None: ...
@overload
def get_collection(collection: str | None = None, settings: Settings | None = None, *,
                   create: bool) -> Collection | None: ...
def get_collection(collection: str | None = None, settings: Settings | None = None,
                   create: bool = True) -> Collection | None:
    """The collection with andini's embedding function; None when it doesn't exist and not `create`."""
    from retrieval.embed import embedding_function

    settings = settings or get_settings()
    name = collection_name(collection, settings)
    api = client(settings)
    ef = embedding_function(settings)
    if create:
        return api.get_or_create_collection(name, embedding_function=ef,
                                            configuration={"hnsw": {"space": "cosine"}})
    try:
        return api.get_collection(name, embedding_function=ef)
    except Exception as exc:  # chromadb raises NotFoundError (a ValueError in older versions)
        if "does not exist" in str(exc) or type(exc).__name__ == "NotFoundError":
            return None
        raise


def included(result: Mapping[str, object], field: str) -> list[Any]:
    """A field of a Chroma get/query result that the call included (Chroma types all but ids as optional)."""
    values = result.get(field)
    if not isinstance(values, list):
        raise AndiniError(f"Chroma answered without the {field} it was asked for.",
                          hint="check that the Chroma server's version matches the client's")
    return values


def iter_metadata(coll: Collection, include_documents: bool = False) -> Iterator[tuple[str, dict, str | None]]:
    """(id, metadata, text or None) for every chunk, read in pages."""
    include: list[Any] = ["metadatas", "documents"] if include_documents else ["metadatas"]
    offset = 0
    while True:
        page = coll.get(include=include, limit=PAGE, offset=offset)
        ids = page["ids"]
        texts: list[str | None] = included(page, "documents") if include_documents else [None] * len(ids)
        yield from zip(ids, included(page, "metadatas"), texts, strict=True)
        if len(ids) < PAGE:
            return
        offset += PAGE


def generation(coll: Collection) -> str:
    return str((coll.metadata or {}).get("generation", ""))


def bump_generation(coll: Collection) -> str:
    """Mark the collection changed: a BM25 index built before this is stale."""
    new = uuid.uuid4().hex
    coll.modify(metadata={**(coll.metadata or {}), "generation": new})
    return new


def list_documents(collection: str | None = None, settings: Settings | None = None) -> list[DocumentInfo]:
    """Ingested documents with their chunk counts, sorted by path."""
    coll = get_collection(collection, settings, create=False)
    if coll is None:
        return []
    docs: dict[str, DocumentInfo] = {}
    for _, meta, _ in iter_metadata(coll):
        info = docs.setdefault(meta["source"], DocumentInfo(source=meta["source"], chunks=0,
                                                             file_hash=meta.get("file_hash", "")))
        info.chunks += 1
        stamp = datetime.fromisoformat(meta["ingested_at"]) if meta.get("ingested_at") else None
        if stamp and (info.ingested_at is None or stamp > info.ingested_at):
            info.ingested_at = stamp
    return sorted(docs.values(), key=lambda d: d.source)


def remove_document(source: str, collection: str | None = None, settings: Settings | None = None) -> int:
    """Delete every chunk of `source`; returns how many were removed (0 when it wasn't there)."""
    coll = get_collection(collection, settings, create=False)
    if coll is None:
        return 0
    ids = coll.get(where={"source": source}, include=[])["ids"]
    if ids:
        bump_generation(coll)
        coll.delete(ids=ids)
        bump_generation(coll)
    return len(ids)


def health(settings: Settings | None = None) -> tuple[bool, str]:
    """Whether the store answers, and a line that says which store and why not."""
    settings = settings or get_settings()
    where = f"Chroma server at {settings.chroma_url}" if settings.chroma_url else \
        f"embedded Chroma at {settings.home / 'chroma'}"
    try:
        api = client(settings)
        api.heartbeat()
        count = len(api.list_collections())
    except Exception as exc:
        return False, f"{where}: {exc}"
    return True, f"{where}: ok, {count} collection(s)"
