"""`andini eval retrieval`: the metrics on hand-made rankings, the runbook questions' derivation, and a real
run over two corpora (a slice of COVID-QA and three runbooks)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
from retrieval_support import RUNBOOKS, copy_runbooks

from andini.errors import InputError


def test_gold_chunks_contain_the_answer_span_else_overlap_it():
    from eval.retrieval import gold_chunks

    chunks = [("a", 0, 100), ("b", 80, 200), ("c", 190, 300)]
    assert gold_chunks(chunks, [(85, 95)]) == ({"a", "b"}, False)
    assert gold_chunks(chunks, [(150, 250)]) == ({"b", "c"}, True)


def test_ranking_metrics_count_the_first_gold_hit():
    from eval.retrieval import ranking_metrics

    m = ranking_metrics(["x", "y", "g", "h"], {"g", "h"}, [1, 5, 10])
    assert m == {"recall@1": 0.0, "recall@5": 1.0, "recall@10": 1.0, "mrr@10": pytest.approx(1 / 3),
                 "ndcg@10": pytest.approx(1 / math.log2(4))}
    assert ranking_metrics(["x"] * 10 + ["g"], {"g"}, [10])["mrr@10"] == 0.0


@pytest.mark.parametrize("content, where", [("[]", "'data'"), ('{"data": [{"paragraphs": [{}]}]}', "context"),
                                             ("{bad json", ":1")])
def test_bad_dataset_is_an_input_error_naming_the_field(tmp_path, content, where):
    from eval.retrieval import read_squad

    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=where):
        read_squad(path)


def test_runbook_questions_copy_no_phrase_of_their_answer_and_are_deterministic(shared_data):
    from eval.runbook_questions import _WORD, TEMPLATES, _trigrams, derive

    folder = shared_data / "kb" / "prometheus-operator" / "node"
    documents, questions, counts = derive(folder)
    assert counts["documents"] == len(documents) and counts["questions"] == len(questions) >= 30
    assert derive(folder)[1] == questions
    for qid, text, doc, (start, end) in questions:
        rel, section = qid.split("#")
        assert section in TEMPLATES and documents[doc][0] == rel
        answer = documents[doc][1][start:end]
        assert f"## {section}" in answer  # a bodiless section before it stays with it
        prefix = TEMPLATES[section].split("{symptom}")[0]
        words = [w.lower() for w in _WORD.findall(text[len(prefix):])]
        assert not set(zip(words, words[1:], words[2:], strict=False)) & _trigrams(answer), qid
    assert 0 < counts["word_overlap"] < 1


def test_dataset_spec_names_a_corpus_and_limit_samples_with_a_seed(shared_data, tmp_path):
    from eval.corpora import load_corpus, parse_spec

    assert parse_spec("kb=../x/y") == ("kb", Path("../x/y"))
    assert parse_spec("/a/covidqa.json") == ("covidqa", Path("/a/covidqa.json"))
    a = load_corpus(str(shared_data / "rag" / "covidqa.json"), limit=20)
    b = load_corpus(str(shared_data / "rag" / "covidqa.json"), limit=20)
    assert [q.id for q in a.questions] == [q.id for q in b.questions] and len(a.questions) == 20
    assert a.kind == "squad" and load_corpus(f"kb={shared_data / 'kb' / 'prometheus-operator' / 'node'}").kind == "runbooks"
    with pytest.raises(InputError, match="no such file"):
        load_corpus(str(tmp_path / "missing.json"))


def test_eval_over_two_corpora_scores_each_and_their_macro_average(shared_data, tmp_path, capsys):
    from eval.reports import load_run
    from eval.retrieval import main

    data = json.loads((shared_data / "rag" / "covidqa.json").read_text())
    article = data["data"][1]  # one long article, its first eight questions
    article["paragraphs"][0]["qas"] = article["paragraphs"][0]["qas"][:8]
    dataset = tmp_path / "slice.json"
    dataset.write_text(json.dumps({"data": [article]}))
    kb = tmp_path / "kb"
    copy_runbooks(shared_data, kb, RUNBOOKS[:3])
    args = argparse.Namespace(dataset=[f"covid={dataset}", f"kb={kb}"], format="auto", k="1,5,10", mode="all",
                              limit=None, out=tmp_path / "run", json=True)
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    covid, runbooks = summary["corpora"]["covid"], summary["corpora"]["kb"]
    assert covid["questions"] == 8 and covid["documents"] == 1 and covid["chunks"] > 5
    assert runbooks["kind"] == "runbooks" and runbooks["documents"] == 3 and runbooks["questions"] >= 6
    assert summary["questions"] == covid["questions"] + runbooks["questions"]
    assert summary["ingest_chunks_per_s"] > 0 and summary["default_mode"] in summary["categories"]
    for corpus in (covid, runbooks):
        for metrics in corpus["categories"].values():
            assert 0 <= metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] <= 1
            assert metrics["mrr@10"] <= metrics["recall@10"] and metrics["latency_p95_ms"] >= metrics["latency_p50_ms"]
    for mode, metrics in summary["categories"].items():  # the macro average weighs each corpus once
        assert metrics["mrr@10"] == pytest.approx(
            (covid["categories"][mode]["mrr@10"] + runbooks["categories"][mode]["mrr@10"]) / 2, abs=1e-4)
    # the one article is all there is: recall@10 over its chunks must find most answers
    assert covid["categories"]["bm25"]["recall@10"] >= 0.5
    run = load_run(tmp_path / "run")
    assert len(run["items"]) == summary["questions"] and all(item["gold"] for item in run["items"])
    assert {item["corpus"] for item in run["items"]} == {"covid", "kb"}
    assert run["summary"]["kind"] == "retrieval"
    assert (tmp_path / "run" / "rankings-covid.jsonl").is_file() and (tmp_path / "run" / "rankings-kb.jsonl").is_file()
    assert "### macro average over 2 corpora" in (tmp_path / "run" / "report.md").read_text()
