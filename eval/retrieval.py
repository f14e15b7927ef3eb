"""`andini eval retrieval`: how well search finds the passage that answers a question.

A SQuAD-format data set gives long contexts, questions, and each answer's character offset in its
context. The contexts are written out as text files and ingested through the normal `retrieval.ingest`
pipeline into a fresh collection; every question is then asked in each mode. The gold chunks of a
question are those of its context whose span contains an answer's span (if no chunk holds it whole,
the chunks that overlap it). Metrics per mode: recall@k (a gold chunk in the top k), MRR@10, nDCG@10
(binary relevance, the first gold hit counts: 1/log2(1+rank)), and query latency p50/p95; for the run,
ingest throughput in chunks per second.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from andini.errors import InputError
from andini.settings import Settings, get_settings

MODES = ("dense", "bm25", "hybrid")


@dataclass
class Question:
    id: str
    text: str
    context: int  # index of its context
    answers: list[tuple[int, int]]  # character spans in the context


def read_squad(path: Path) -> tuple[list[str], list[Question]]:
    """Contexts and answerable questions of a SQuAD-format file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError("not SQuAD format: no top-level 'data' list", path=path, field="data")
    contexts: list[str] = []
    questions: list[Question] = []
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            if not isinstance(paragraph.get("context"), str):
                raise InputError("paragraph without a 'context' string", path=path,
                                 field=f"data[{a}].paragraphs[{p}].context")
            context = paragraph["context"]
            contexts.append(context)
            for qa in paragraph.get("qas", []):
                spans = [(ans["answer_start"], ans["answer_start"] + len(ans["text"]))
                         for ans in qa.get("answers", []) if ans.get("text")]
                if spans and not qa.get("is_impossible"):
                    questions.append(Question(str(qa["id"]), qa["question"], len(contexts) - 1, spans))
    if not questions:
        raise InputError("no answerable questions", path=path, field="data[].paragraphs[].qas")
    return contexts, questions


def gold_chunks(chunks: list[tuple[str, int, int]], answers: list[tuple[int, int]]) -> tuple[set[str], bool]:
    """Ids of the chunks (id, start, end) that contain an answer span whole; else those overlapping
    one. The flag says whether the fallback was used."""
    whole = {cid for cid, s, e in chunks for a, b in answers if s <= a and b <= e}
    if whole:
        return whole, False
    return {cid for cid, s, e in chunks for a, b in answers if s < b and a < e}, True


def ranking_metrics(ranked: list[str], gold: set[str], ks: list[int]) -> dict[str, float]:
    rank = next((i for i, cid in enumerate(ranked, start=1) if cid in gold), None)
    metrics = {f"recall@{k}": float(rank is not None and rank <= k) for k in ks}
    metrics["mrr@10"] = 1.0 / rank if rank is not None and rank <= 10 else 0.0
    metrics["ndcg@10"] = 1.0 / math.log2(1 + rank) if rank is not None and rank <= 10 else 0.0
    return metrics


@dataclass
class Asked:
    """One question's gold chunks and both rankings (to FUSION_DEPTH), with their latencies."""

    question: Question
    gold: set[str]
    dense: list[tuple[str, float]]
    bm25: list[tuple[str, float]]
    dense_s: float
    bm25_s: float


@dataclass
class Collected:
    """Everything a scoring pass needs: the questions asked and what ingest did."""

    asked: list[Asked]
    documents: int
    chunks: int
    ingest_s: float
    gold_fallbacks: int
    config: dict[str, Any]


def collect(dataset: Path, settings: Settings | None = None, limit: int | None = None) -> Collected:
    """Ingest the data set's contexts into a fresh collection and ask every question once per
    retriever, keeping the rankings to the fusion depth (so fusion variants can be scored without
    asking again)."""
    from retrieval import bm25, store
    from retrieval.embed import embed
    from retrieval.ingest import ingest
    from retrieval.search import FUSION_DEPTH, dense_ranking

    base = settings or get_settings()
    contexts, questions = read_squad(dataset)
    questions = questions[:limit] if limit else questions
    with tempfile.TemporaryDirectory(prefix="andini-eval-") as tmp:
        # A fresh store: a temporary embedded one, or a throwaway collection on the configured server.
        run_settings = base.model_copy(update={"home": Path(tmp) / "home"})
        name = f"eval-{uuid.uuid4().hex[:12]}"
        files = _write_contexts(contexts, Path(tmp) / "docs")
        embed(["warm-up"], run_settings)  # model load is not ingest throughput
        started = time.perf_counter()
        report = ingest(files, collection=name, settings=run_settings)
        ingest_s = time.perf_counter() - started
        if not report.ok:
            raise InputError(f"{len(report.errors)} contexts failed to ingest: {report.errors[0].reason}",
                             path=dataset)
        coll = store.get_collection(name, run_settings)
        try:
            spans = _chunk_spans(coll, files)
            index = bm25.get_index(coll, run_settings)
            asked, fallbacks = [], 0
            for n, question in enumerate(questions, start=1):
                gold, fell_back = gold_chunks(spans[str(files[question.context])], question.answers)
                fallbacks += fell_back
                t0 = time.perf_counter()
                dense = dense_ranking(coll, question.text, FUSION_DEPTH, run_settings)
                t1 = time.perf_counter()
                sparse = index.query(question.text, FUSION_DEPTH)
                t2 = time.perf_counter()
                asked.append(Asked(question, gold, dense, sparse, t1 - t0, t2 - t1))
                if n % 200 == 0:
                    print(f"asked {n}/{len(questions)}", file=sys.stderr, flush=True)
        finally:
            if base.chroma_url:
                store.client(run_settings).delete_collection(name)
    return Collected(asked, len(files), report.chunks_written, ingest_s, fallbacks, _config(run_settings))


def score(collected: Collected, ks: list[int], modes: list[str], rrf_k: int | None = None,
          depth: int | None = None, on_item: Callable[[dict[str, Any]], None] | None = None
          ) -> dict[str, dict[str, float]]:
    """Metrics per mode. Hybrid fuses the two kept rankings exactly as `retrieval.search` does; its
    latency is the two retrievals' plus the fusion's."""
    from eval.runs import percentile
    from retrieval.search import FUSION_DEPTH, FUSION_WEIGHTS, RRF_K, fuse

    rrf_k, depth = rrf_k or RRF_K, depth or FUSION_DEPTH
    scores: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    latencies: dict[str, list[float]] = {m: [] for m in modes}
    for asked in collected.asked:
        item: dict[str, Any] = {"id": asked.question.id, "question": asked.question.text, "gold": sorted(asked.gold)}
        for mode in modes:
            if mode == "hybrid":
                t0 = time.perf_counter()
                ranked = [cid for cid, _ in fuse([asked.dense[:depth], asked.bm25[:depth]], rrf_k=rrf_k,
                                                            weights=list(FUSION_WEIGHTS))]
                latency = asked.dense_s + asked.bm25_s + time.perf_counter() - t0
            else:
                ranked = [cid for cid, _ in getattr(asked, mode)]
                latency = getattr(asked, f"{mode}_s")
            metrics = ranking_metrics(ranked, asked.gold, ks)
            scores[mode].append(metrics)
            latencies[mode].append(latency)
            item[mode] = {"ranked": ranked[:10], **metrics}
        if on_item:
            on_item(item)
    result = {}
    for mode in modes:
        metrics = {m: round(sum(s[m] for s in scores[mode]) / len(scores[mode]), 4) for m in scores[mode][0]}
        metrics.update(items=len(scores[mode]), latency_p50_ms=round(percentile(latencies[mode], 50) * 1000, 1),
                       latency_p95_ms=round(percentile(latencies[mode], 95) * 1000, 1))
        result[mode] = metrics
    return result


def evaluate_retrieval(dataset: Path, ks: list[int] | None = None, modes: list[str] | None = None,
                       settings: Settings | None = None, limit: int | None = None,
                       on_item: Callable[[dict[str, Any]], None] | None = None,
                       rankings_file: Path | None = None) -> dict[str, Any]:
    """Ingest the data set's contexts into a fresh collection, ask every question in each mode and
    score; `rankings_file` keeps both full rankings per question (for tuning the fusion offline,
    benchmarks/bench_retrieval_fusion.py). Returns the summary: {"overall": metrics of the default mode, "categories": per mode, ...}."""
    ks = sorted(ks or [1, 5, 10])
    modes = modes or list(MODES)
    settings = settings or get_settings()
    collected = collect(dataset, settings, limit)
    if rankings_file is not None:
        save_rankings(collected, rankings_file)
    categories = score(collected, ks, modes, on_item=on_item)
    default_mode = settings.search_mode if settings.search_mode in categories else modes[0]
    return {
        "kind": "retrieval", "name": f"{Path(dataset).stem} {settings.chunk_size}/{settings.chunk_overlap}",
        "dataset": str(dataset), "questions": len(collected.asked), "documents": collected.documents,
        "chunks": collected.chunks, "ingest_s": round(collected.ingest_s, 2),
        "ingest_chunks_per_s": round(collected.chunks / collected.ingest_s, 1),
        "gold_overlap_fallbacks": collected.gold_fallbacks, "default_mode": default_mode,
        "config": collected.config, "overall": categories[default_mode], "categories": categories,
    }


def save_rankings(collected: Collected, path: Path) -> None:
    """Both rankings per question, one JSON line each, after a header line with the run's facts."""
    with Path(path).open("w", encoding="utf-8") as out:
        out.write(json.dumps({"documents": collected.documents, "chunks": collected.chunks,
                              "ingest_s": collected.ingest_s, "gold_fallbacks": collected.gold_fallbacks,
                              "config": collected.config}) + "\n")
        for a in collected.asked:
            q = a.question
            out.write(json.dumps({"id": q.id, "question": q.text, "context": q.context, "answers": q.answers,
                                  "gold": sorted(a.gold), "dense": a.dense, "bm25": a.bm25,
                                  "dense_s": a.dense_s, "bm25_s": a.bm25_s}) + "\n")


def load_rankings(path: Path) -> Collected:
    """What `save_rankings` wrote."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    asked = []
    for line in lines[1:]:
        r = json.loads(line)
        question = Question(r["id"], r["question"], r["context"], [tuple(a) for a in r["answers"]])
        asked.append(Asked(question, set(r["gold"]), [tuple(x) for x in r["dense"]],
                           [tuple(x) for x in r["bm25"]], r["dense_s"], r["bm25_s"]))
    return Collected(asked, head["documents"], head["chunks"], head["ingest_s"], head["gold_fallbacks"],
                     head["config"])


def _write_contexts(contexts: list[str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    files = []
    for i, context in enumerate(contexts):
        path = folder / f"context-{i:05d}.txt"
        path.write_bytes(context.encode("utf-8"))
        files.append(path.resolve())
    return files


def _chunk_spans(coll: Any, files: list[Path]) -> dict[str, list[tuple[str, int, int]]]:
    from retrieval.store import iter_metadata

    spans: dict[str, list[tuple[str, int, int]]] = {str(f): [] for f in files}
    for cid, meta, _ in iter_metadata(coll):
        spans[meta["source"]].append((cid, meta["start"], meta["end"]))
    return spans


def _config(settings: Settings) -> dict[str, Any]:
    from retrieval.search import FUSION_DEPTH, FUSION_WEIGHTS, RRF_K

    return {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "embed_model": settings.embed_model, "rrf_k": RRF_K, "fusion_depth": FUSION_DEPTH,
            "fusion_weights": list(FUSION_WEIGHTS),
            "store": "server" if settings.chroma_url else "embedded"}


def format_table(summary: dict[str, Any], ks: list[int]) -> str:
    """The side-by-side Markdown table of modes."""
    columns = [f"recall@{k}" for k in ks] + ["mrr@10", "ndcg@10", "latency_p50_ms", "latency_p95_ms"]
    lines = ["| mode | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for mode, metrics in summary["categories"].items():
        lines.append(f"| {mode} | " + " | ".join(str(metrics.get(c, "-")) for c in columns) + " |")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """`andini eval retrieval --dataset FILE --format squad [-k 1,5,10] [--mode M|all] [--out DIR] [--json]`."""
    from eval.runs import RunWriter, new_run_dir

    try:
        ks = sorted({int(k) for k in str(args.k).split(",") if k.strip()})
    except ValueError:
        raise InputError(f"-k takes comma-separated whole numbers, not {args.k!r}", field="-k") from None
    if not ks or min(ks) < 1:
        raise InputError("-k needs at least one cut-off of 1 or more", field="-k")
    modes = list(MODES) if getattr(args, "mode", "all") in (None, "all") else [args.mode]
    settings = get_settings()
    run_dir = new_run_dir("retrieval", Path(args.dataset).stem, getattr(args, "out", None))
    writer = RunWriter(run_dir)
    writer.write_config({"kind": "retrieval", "dataset": str(args.dataset), "format": args.format, "k": ks,
                         "modes": modes, **_config(settings)})
    try:
        summary = evaluate_retrieval(Path(args.dataset), ks, modes, settings, on_item=writer.add_item,
                                     rankings_file=run_dir / "rankings.jsonl")
    finally:
        writer.close()
    writer.write_summary(summary)
    (run_dir / "report.md").write_text(format_table(summary, ks) + "\n")
    if args.json:
        from andini.cli import print_json

        print_json({"run": str(run_dir), **summary})
        return 0
    print(format_table(summary, ks))
    print(f"{summary['questions']} questions, {summary['documents']} documents, {summary['chunks']} chunks; "
          f"ingest {summary['ingest_chunks_per_s']} chunks/s; run folder: {run_dir}", file=sys.stdout)
    return 0
