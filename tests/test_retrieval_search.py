"""Search on real parts: embedded Chroma and a real `chroma run` server, the real embedding model,
runbooks as the corpus. Every hit's citation must slice its text back out of the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from retrieval_support import chroma_server, copy_runbooks

from andini.cli import main as andini_main
from andini.settings import get_settings

REPO_DOCS = Path(__file__).resolve().parent.parent / "docs"
QUERIES = {  # question -> the runbook that answers it
    "clock skew detected between nodes": "NodeClockSkewDetected.md",
    "a filesystem is running out of space": "NodeFilesystemSpaceFillingUp.md",
    "RAID array is degraded, a disk failed": "NodeRAIDDegraded.md",
    "network interface is receiving errors": "NodeNetworkReceiveErrs.md",
}


def _assert_cited(hits, query):
    assert hits, query
    for hit in hits:
        text = Path(hit.source.source).read_text()
        assert text[hit.source.start:hit.source.end] == hit.text
        assert hit.source.heading.split(" > ")[0] == Path(hit.source.source).stem


def _search_everything(k: int = 3) -> None:
    from retrieval.search import search

    for mode in ("dense", "bm25", "hybrid"):
        for query, expected in QUERIES.items():
            hits = search(query, k=k, mode=mode)
            assert len(hits) == k
            assert Path(hits[0].source.source).name == expected, (mode, query, [h.source for h in hits])
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
            _assert_cited(hits, query)


def test_embedded_search_finds_the_right_runbook_with_exact_citations(shared_data, tmp_path):
    from retrieval.ingest import ingest

    assert ingest([copy_runbooks(shared_data, tmp_path / "docs")]).ok
    _search_everything()


def test_server_mode_ingests_searches_lists_and_reports_health(shared_data, tmp_path, free_port, monkeypatch):
    from retrieval import store
    from retrieval.ingest import ingest

    docs = copy_runbooks(shared_data, tmp_path / "docs")
    with chroma_server(tmp_path / "server-data", free_port) as url:
        monkeypatch.setenv("ANDINI_CHROMA_URL", url)
        get_settings.cache_clear()
        assert ingest([docs]).files_added == 6
        assert not (get_settings().home / "chroma").exists()  # nothing went to the embedded store
        _search_everything()
        assert ingest([docs]).chunks_written == 0
        assert len(store.list_documents()) == 6
        ok, line = store.health()
        assert ok and url in line
    ok, line = store.health()  # the server is gone: health says so, search says what to do
    assert not ok and url in line
    from andini.errors import AndiniError
    from retrieval.search import search

    with pytest.raises(AndiniError, match="ANDINI_CHROMA_URL"):
        search("clock skew")


def test_bm25_index_follows_writes_made_by_another_process(shared_data, tmp_path):
    """The BM25 index on disk is rebuilt when the collection's generation moved on."""
    from retrieval import bm25, store
    from retrieval.ingest import ingest
    from retrieval.search import search

    docs = copy_runbooks(shared_data, tmp_path / "docs", ["NodeRAIDDegraded.md"])
    ingest([docs])
    assert search("RAID", mode="bm25")
    store.bump_generation(store.get_collection())  # what any other writer does
    stale = bm25._CACHE.pop(bm25.index_dir("andini", get_settings()))
    fresh = bm25.get_index(store.get_collection())
    assert fresh.generation != stale.generation and fresh.ids == stale.ids


def test_search_cli_json_is_one_object_and_empty_store_has_no_hits(shared_data, tmp_path, capsys):
    assert andini_main(["search", "clock skew", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == []
    assert andini_main(["ingest", str(copy_runbooks(shared_data, tmp_path / "docs")), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files_added"] == 6 and report["ok"] is True
    assert andini_main(["search", "clock skew detected", "-k", "2", "--mode", "bm25", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert result["mode"] == "bm25" and len(result["hits"]) == 2
    hit = result["hits"][0]
    assert set(hit) == {"chunk_id", "text", "score", "source"}
    assert set(hit["source"]) == {"source", "heading", "start", "end"}
    assert andini_main(["search", "clock skew detected", "-k", "1"]) == 0
    assert "NodeClockSkewDetected.md:" in capsys.readouterr().out


def test_reciprocal_rank_fusion_orders_by_summed_reciprocal_ranks():
    from retrieval.search import fuse

    fused = fuse([[("a", 9.0), ("b", 8.0), ("c", 7.0)], [("c", 1.0), ("a", 0.5)]], rrf_k=60)
    assert [cid for cid, _ in fused] == ["a", "c", "b"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_first_store_use_from_many_threads_at_once(tmp_path):
    """The API serves requests on a thread pool: the first Chroma client must come up once, whole, even
    when 16 requests reach the store together (without the lock, 4 of 5 such starts raised here)."""
    from concurrent.futures import ThreadPoolExecutor

    from chromadb.api.shared_system_client import SharedSystemClient

    from andini.settings import Settings
    from retrieval import store

    for trial in range(3):
        settings = Settings(home=tmp_path / str(trial))
        SharedSystemClient.clear_system_cache()  # a fresh process, as far as chromadb can tell
        with ThreadPoolExecutor(16) as pool:
            counts = list(pool.map(lambda _, s=settings: store.get_collection("docs", s).count(), range(16)))
        assert counts == [0] * 16


UI_QUESTIONS = {  # the chat page's examples, and the browser test's question -> the document that answers it
    "How do I ingest a folder of documents?": "retrieval.md",
    "Plan the steps to fine-tune a small model on my own tool-calling data.": "finetune.md",
    "Which model backends can andini use?": "agent.md",
    "How do I start the chat UI?": "ui.md",
    "RAID array is degraded, a disk failed": "NodeRAIDDegraded.md",
}


def test_shipped_defaults_answer_the_ui_questions_from_the_bundled_docs_and_runbooks(shared_data, tmp_path):
    """The default mode, fusion and chunking (chosen in docs/retrieval.md) put the document that answers each
    question the UI offers among the hits the agent reads and cites (settings.search_k)."""
    from retrieval.ingest import ingest
    from retrieval.search import search
    from ui.app.views.chat import EXAMPLES

    assert set(EXAMPLES) <= set(UI_QUESTIONS)
    assert ingest([REPO_DOCS, copy_runbooks(shared_data, tmp_path / "kb")]).ok
    for question, expected in UI_QUESTIONS.items():
        hits = search(question)
        assert len(hits) == get_settings().search_k
        assert expected in [Path(h.source.source).name for h in hits], (question, [h.source for h in hits])
        for hit in hits:  # citations slice their text back out of the file
            assert Path(hit.source.source).read_text()[hit.source.start:hit.source.end] == hit.text
