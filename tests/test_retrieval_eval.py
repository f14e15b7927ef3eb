"""`andini eval retrieval`: the metrics on hand-made rankings, and a real run on a slice of COVID-QA."""

from __future__ import annotations

import argparse
import json
import math

import pytest

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


def test_eval_on_covidqa_slice_scores_every_mode_and_writes_a_run(shared_data, tmp_path, capsys):
    from eval.reports import load_run
    from eval.retrieval import main

    data = json.loads((shared_data / "rag" / "covidqa.json").read_text())
    article = data["data"][1]  # one long article, its first eight questions
    article["paragraphs"][0]["qas"] = article["paragraphs"][0]["qas"][:8]
    dataset = tmp_path / "slice.json"
    dataset.write_text(json.dumps({"data": [article]}))
    args = argparse.Namespace(dataset=dataset, format="squad", k="1,5,10", mode="all", out=tmp_path / "run", json=True)
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["questions"] == 8 and summary["documents"] == 1 and summary["chunks"] > 5
    assert summary["ingest_chunks_per_s"] > 0 and summary["default_mode"] in summary["categories"]
    for metrics in summary["categories"].values():
        assert 0 <= metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] <= 1
        assert metrics["mrr@10"] <= metrics["recall@10"] and metrics["latency_p95_ms"] >= metrics["latency_p50_ms"]
    # the one article is all there is: recall@10 over its chunks must find most answers
    assert summary["categories"]["bm25"]["recall@10"] >= 0.5
    run = load_run(tmp_path / "run")
    assert len(run["items"]) == 8 and all(item["gold"] for item in run["items"])
    assert run["summary"]["kind"] == "retrieval"
    assert (tmp_path / "run" / "report.md").read_text().startswith("| mode |")
