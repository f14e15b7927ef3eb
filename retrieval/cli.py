"""`andini ingest` and `andini search`: thin shells over retrieval.ingest and retrieval.search."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands; handlers import heavy modules lazily."""
    p = sub.add_parser("ingest", help="add Markdown, text, HTML and PDF files to the knowledge base",
                       description="Ingest files and folders (md, txt, html, pdf) into a Chroma collection. "
                                   "Unchanged files are skipped; changed files replace their chunks. "
                                   "Exit status 1 when any file could not be ingested.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (walked recursively)")
    p.add_argument("--collection", help="Chroma collection (default: settings.collection)")
    p.add_argument("--prune", action="store_true",
                   help="remove documents under the given folders whose files are gone")
    p.add_argument("--json", action="store_true", help="print one JSON object: the report")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("search", help="search the knowledge base",
                       description="Search ingested documents; each hit carries its source, heading path "
                                   "and character span.")
    p.add_argument("query", metavar="QUERY", help="what to look for")
    p.add_argument("-k", type=int, help="number of hits (default: settings.search_k)")
    p.add_argument("--mode", choices=["dense", "bm25", "hybrid"], help="default: settings.search_mode")
    p.add_argument("--collection", help="Chroma collection (default: settings.collection)")
    p.add_argument("--json", action="store_true", help="print one JSON object: the hits")
    p.set_defaults(func=_search)


def _progress(done: int, total: int, path: str) -> None:
    if path:
        print(f"[{done + 1}/{total}] {path}", file=sys.stderr, flush=True)


def _ingest(args: argparse.Namespace) -> int:
    from retrieval.ingest import ingest

    report = ingest(args.paths, collection=args.collection, prune=args.prune, progress=_progress)
    for error in report.errors:
        print(f"skipped {error.path}: {error.reason}", file=sys.stderr)
    if args.json:
        from andini.cli import print_json

        print_json({**report.model_dump(), "ok": report.ok})
    else:
        print(f"{report.collection}: {report.files_added} added, {report.files_updated} updated, "
              f"{report.files_unchanged} unchanged, {report.files_removed} removed, "
              f"{len(report.errors)} failed; {report.chunks_written} chunks written, "
              f"{report.chunks_deleted} deleted")
    return 0 if report.ok else 1


def _search(args: argparse.Namespace) -> int:
    from andini.settings import get_settings
    from retrieval.search import search

    settings = get_settings()
    mode = args.mode or settings.search_mode
    hits = search(args.query, k=args.k, mode=mode, collection=args.collection)
    if args.json:
        from andini.cli import print_json

        print_json({"query": args.query, "mode": mode, "hits": [h.model_dump() for h in hits]})
        return 0
    if not hits:
        print("no hits (is anything ingested? `andini ingest PATH`)", file=sys.stderr)
    for rank, hit in enumerate(hits, start=1):
        where = f"{hit.source.source}:{hit.source.start}-{hit.source.end}"
        heading = f"  [{hit.source.heading}]" if hit.source.heading else ""
        print(f"{rank}. {hit.score:.4f}  {where}{heading}")
        snippet = " ".join(hit.text.split())
        print(f"   {snippet[:240]}{'...' if len(snippet) > 240 else ''}")
    return 0
