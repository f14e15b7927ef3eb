"""Search a collection: dense (embeddings in Chroma), BM25 (bm25s), or hybrid (reciprocal rank fusion).

Hybrid asks both retrievers for `FUSION_DEPTH` candidates and scores each chunk by
sum(weight / (RRF_K + rank)) over the lists it appears in (reciprocal rank fusion, Cormack et al.,
2009). The numbers behind the constants are in docs/retrieval.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from andini.errors import AndiniError
from andini.schema import Source
from andini.settings import Settings, get_settings
from retrieval import bm25, store

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

MODES = ("dense", "bm25", "hybrid")
# Chosen by leave-one-corpus-out (eval/retrieval_choice.py, docs/retrieval.md): over COVID-QA, the runbooks
# and SQuAD, the setting tuned on two corpora lost to the standard on the third, on average (recall@5 0.549
# against 0.612), so the literature's standard ships: k=60 and equal weights (Cormack et al., 2009), with
# the 512/64 chunks of settings.py. The earlier k=5 with BM25 weighted 4:1 was tuned on COVID-QA alone.
RRF_K = 60
FUSION_DEPTH = 50
FUSION_WEIGHTS = (1.0, 1.0)  # (dense, bm25)

Mode = Literal["dense", "bm25", "hybrid"]


class Hit(BaseModel):
    """One search result: a chunk, where it came from, and how well it matched."""

    chunk_id: str = Field(description="Chroma id of the chunk.")
    text: str = Field(description="The chunk's text, exactly as in the document at source.start:source.end.")
    score: float = Field(description="Higher is better: cosine similarity (dense), BM25 score, or RRF score (hybrid).")
    source: Source = Field(description="Document path, heading path and character span.")


def search(query: str, k: int | None = None, mode: str | None = None, collection: str | None = None,
           settings: Settings | None = None) -> list[Hit]:
    """The `k` best chunks for `query` (default: settings.search_k hits in settings.search_mode)."""
    settings = settings or get_settings()
    k = k or settings.search_k
    mode = mode or settings.search_mode
    if mode not in MODES:
        raise AndiniError(f"unknown search mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    if not query.strip():
        raise AndiniError("empty query", hint="give some words to search for")
    coll = store.get_collection(collection, settings, create=False)
    if coll is None or coll.count() == 0:
        return []
    return _hits(coll, ranking(coll, query, k, mode, settings))


def ranking(coll: Collection, query: str, n: int, mode: str, settings: Settings,
            depth: int = FUSION_DEPTH, rrf_k: int = RRF_K) -> list[tuple[str, float]]:
    """(chunk id, score) for the `n` best chunks in `mode`, best first."""
    if mode == "dense":
        return dense_ranking(coll, query, n, settings)
    if mode == "bm25":
        return bm25.get_index(coll, settings).query(query, n)
    depth = max(depth, n)
    return fuse([dense_ranking(coll, query, depth, settings),
                 bm25.get_index(coll, settings).query(query, depth)], rrf_k=rrf_k, weights=list(FUSION_WEIGHTS))[:n]


def dense_ranking(coll: Collection, query: str, n: int, settings: Settings) -> list[tuple[str, float]]:
    """(chunk id, cosine similarity) for the `n` nearest chunks."""
    from retrieval.embed import embed

    result = coll.query(query_embeddings=embed([query], settings), n_results=min(n, coll.count()),
                        include=["distances"])
    distances = store.included(result, "distances")[0]
    return [(cid, 1.0 - float(dist)) for cid, dist in zip(result["ids"][0], distances, strict=True)]


def fuse(rankings: list[list[tuple[str, float]]], rrf_k: int = RRF_K,
         weights: list[float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of ranked (id, score) lists; returns (id, fused score), best first."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, (cid, _) in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + weight / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])


def _hits(coll: Collection, ranked: list[tuple[str, float]]) -> list[Hit]:
    if not ranked:
        return []
    got = coll.get(ids=[cid for cid, _ in ranked], include=["documents", "metadatas"])
    by_id = {cid: (text, meta) for cid, text, meta in
             zip(got["ids"], store.included(got, "documents"), store.included(got, "metadatas"), strict=True)}
    hits = []
    for cid, score in ranked:
        if cid not in by_id:  # deleted since the BM25 index was read
            continue
        text, meta = by_id[cid]
        hits.append(Hit(chunk_id=cid, text=text or "", score=round(score, 6),
                        source=Source(source=meta["source"], heading=meta.get("heading", ""),
                                      start=meta.get("start"), end=meta.get("end"))))
    return hits
