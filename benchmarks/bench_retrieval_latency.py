"""Query latency of `retrieval.search.search` at 100,000 chunks, embedded Chroma and a Chroma server.

    .venv/bin/python benchmarks/bench_retrieval_latency.py [--chunks 100000] [--queries 100]

The corpus is synthetic: each chunk is 60-120 words drawn (Zipf-like) from the runbooks' vocabulary,
or a fixed word list when ../shared/data is absent. Embedding 100,000 chunks with the real model takes
hours on two CPU cores, so chunk vectors are random unit vectors of the model's dimension (384) written
straight into Chroma. Queries go through the whole real path: the real model embeds the query, Chroma's
HNSW index answers, bm25s scores 100,000 chunks, and the hits are read back from Chroma. Random vectors
are the hard case for HNSW (no clusters), so dense latency here is if anything pessimistic.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

SHARED = Path(os.environ.get("ANDINI_SHARED_DATA", REPO.parent / "shared" / "data"))
FALLBACK_WORDS = ("node disk alert pod memory cluster network latency error restart volume etcd scrape "
                  "target quota certificate rotate backup upgrade replica leader timeout").split()
QUERIES = ["filesystem almost out of space", "etcd leader election failing", "pod restarts crash loop",
           "certificate expires soon rotate", "network receive errors on interface", "prometheus target down",
           "alertmanager failed to send notifications", "high memory usage on node"]


def vocabulary() -> list[str]:
    words: list[str] = []
    for path in sorted((SHARED / "kb").rglob("*.md")) if SHARED.is_dir() else []:
        words += re.findall(r"[A-Za-z]{3,}", path.read_text(errors="ignore"))
    return words or FALLBACK_WORDS


def synthetic_chunks(n: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    rng = random.Random(seed)
    words = vocabulary()
    texts, metas = [], []
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(60, 120)))
        texts.append(text)
        metas.append({"source": f"/synthetic/doc-{i // 20:05d}.md", "heading": f"Doc {i // 20} > Part {i % 20}",
                      "start": 0, "end": len(text), "chunk_index": i % 20, "n_chunks": 20,
                      "file_hash": f"{i // 20:064x}", "chunk_hash": f"{i:016x}", "format": "markdown",
                      "title": "", "ingested_at": "2026-01-01T00:00:00+00:00"})
    return texts, metas


def load(settings, texts: list[str], metas: list[dict], batch: int = 5000) -> float:
    """Write the synthetic chunks with random unit vectors; returns seconds."""
    import numpy as np

    from retrieval import bm25, store

    coll = store.get_collection("bench", settings)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        vectors = rng.standard_normal((min(batch, len(texts) - start), 384)).astype("float32")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        coll.add(ids=[f"c{i:07d}" for i in range(start, start + len(vectors))], embeddings=vectors,
                 documents=texts[start:start + len(vectors)], metadatas=metas[start:start + len(vectors)])
    store.bump_generation(coll)
    bm25.build(coll, settings)
    return time.perf_counter() - started


def measure(settings, queries: int) -> dict[str, tuple[float, float]]:
    from retrieval.search import search

    search("warm up the model", k=5, mode="hybrid", collection="bench", settings=settings)
    results = {}
    for mode in ("dense", "bm25", "hybrid"):
        times = []
        for i in range(queries):
            started = time.perf_counter()
            hits = search(QUERIES[i % len(QUERIES)], k=5, mode=mode, collection="bench", settings=settings)
            times.append(time.perf_counter() - started)
            assert len(hits) == 5
        times.sort()
        results[mode] = (statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000)
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100, help="queries per mode")
    parser.add_argument("--stores", default="embedded,server")
    args = parser.parse_args()

    from retrieval_support import chroma_server

    from andini.settings import Settings

    texts, metas = synthetic_chunks(args.chunks)
    rows = []
    with tempfile.TemporaryDirectory(prefix="andini-bench-") as tmp:
        for kind in args.stores.split(","):
            home = Path(tmp) / kind
            if kind == "embedded":
                settings = Settings(home=home)
                load_s = load(settings, texts, metas)
                rows.append((kind, load_s, measure(settings, args.queries)))
            else:
                with chroma_server(Path(tmp) / "server-data", free_port()) as url:
                    settings = Settings(home=home, chroma_url=url)
                    load_s = load(settings, texts, metas)
                    rows.append((kind, load_s, measure(settings, args.queries)))
    print(f"\n{args.chunks:,} chunks, {args.queries} queries per mode, k=5, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    # load = writing chunks with ready vectors plus the BM25 build; embedding throughput with the real model
    # is `andini eval retrieval(-choice)`'s ingest chunks/s
    print("| store | load s | load chunks/s | dense p50 ms | dense p95 ms | bm25 p50 ms | bm25 p95 ms "
          "| hybrid p50 ms | hybrid p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, load_s, r in rows:
        cells = " | ".join(f"{r[m][0]:.1f} | {r[m][1]:.1f}" for m in ("dense", "bm25", "hybrid"))
        print(f"| {kind} | {load_s:.0f} | {args.chunks / load_s:.0f} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
