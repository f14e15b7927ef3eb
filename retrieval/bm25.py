"""BM25 over a collection's chunks with `bm25s` (a maintained, fast sparse implementation).

The index lives beside the Chroma store under $ANDINI_HOME/bm25/<collection>, stamped with the
collection's generation. Ingest rebuilds it after writing; a search that finds it out of step with the
collection (another process or a server-side change wrote since) rebuilds it from the collection first.
Tokens are lower-cased words without English stop words, stemmed with NLTK's Snowball stemmer (NLTK
already comes with LlamaIndex).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andini.settings import Settings, get_settings
from retrieval import store

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

_CACHE: dict[Path, BM25Index] = {}


@dataclass
class BM25Index:
    retriever: Any  # bm25s.BM25, or None for an empty collection
    ids: list[str]
    generation: str

    def query(self, text: str, n: int) -> list[tuple[str, float]]:
        """Up to `n` (chunk id, score) pairs with a positive score, best first."""
        if self.retriever is None or not self.ids:
            return []
        import bm25s

        tokens = bm25s.tokenize([text], stopwords="en", stemmer=_stem_words, return_ids=False,
                                show_progress=False)
        if not tokens[0]:
            return []
        docs, scores = self.retriever.retrieve(tokens, k=min(n, len(self.ids)), show_progress=False)
        return [(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stem(word)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer("english")


def _stem_words(words: list[str]) -> list[str]:
    return [_stem(w) for w in words]


def index_text(text: str, heading: str) -> str:
    """What BM25 and the embedding model see: the heading path gives a section its context."""
    return f"{heading}\n{text}" if heading else text


def index_dir(name: str, settings: Settings) -> Path:
    if settings.chroma_url:  # one server's collection must not share an index with the local one
        name = f"{name}@{hashlib.sha256(settings.chroma_url.encode()).hexdigest()[:10]}"
    return settings.home / "bm25" / name


def build(coll: Collection, settings: Settings | None = None) -> BM25Index:
    """Index every chunk of `coll` and save the index; returns it."""
    import bm25s

    settings = settings or get_settings()
    gen = store.generation(coll)
    ids, texts = [], []
    for chunk_id, meta, text in store.iter_metadata(coll, include_documents=True):
        ids.append(chunk_id)
        texts.append(index_text(text or "", meta.get("heading", "")))
    retriever = None
    if ids:
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=_stem_words, show_progress=False)
        if tokens.vocab:  # chunks with no indexable word at all (e.g. "0") leave nothing to index
            retriever = bm25s.BM25()
            retriever.index(tokens, show_progress=False)
    index = BM25Index(retriever, ids, gen)
    _save(index, index_dir(coll.name, settings))
    return index


def _save(index: BM25Index, folder: Path) -> None:
    # Write beside, then swap in, so a reader never sees half an index.
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}")
    tmp.mkdir(parents=True)
    if index.retriever is not None:
        index.retriever.save(str(tmp), show_progress=False)
    (tmp / "andini.json").write_text(json.dumps({"generation": index.generation, "ids": index.ids,
                                                      "indexed": index.retriever is not None}))
    old = folder.with_name(f".{folder.name}.old.{uuid.uuid4().hex}")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    _CACHE[folder] = index


def _load(folder: Path) -> BM25Index | None:
    try:
        meta = json.loads((folder / "andini.json").read_text())
    except (OSError, ValueError):
        return None
    import bm25s

    retriever = bm25s.BM25.load(str(folder), show_progress=False) if meta.get("indexed", bool(meta["ids"])) else None
    return BM25Index(retriever, meta["ids"], meta["generation"])


def get_index(coll: Collection, settings: Settings | None = None) -> BM25Index:
    """The collection's BM25 index, in step with its current generation."""
    settings = settings or get_settings()
    folder = index_dir(coll.name, settings)
    gen = store.generation(coll)
    cached = _CACHE.get(folder)
    if cached is not None and cached.generation == gen:
        return cached
    loaded = _load(folder)
    if loaded is not None and loaded.generation == gen:
        _CACHE[folder] = loaded
        return loaded
    return build(coll, settings)
