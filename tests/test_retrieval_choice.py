"""`andini eval retrieval-choice`: the leave-one-corpus-out rule on hand-made score tables, and a real run over
three tiny corpora (a COVID-QA article, three runbooks, a hand-written SQuAD file) that a second run reads
back from its cache."""

from __future__ import annotations

import argparse
import json

import pytest
from retrieval_support import RUNBOOKS, copy_runbooks

from andini.errors import InputError
from eval.retrieval_choice import STANDARD, Setting, choose, decide, grid, leave_one_out, parse_chunkings

SETTINGS = grid(((512, 64),))
TUNED = Setting("hybrid", 512, 64, rrf_k=5, weights=(1.0, 4.0))
BM25 = Setting("bm25", 512, 64)


def _table(scores: dict[str, dict[Setting, float]], default: float = 0.5):
    """corpus -> setting -> metrics, every grid setting at `default` unless given."""
    return {c: {s: {"recall@5": given.get(s, default)} for s in SETTINGS} for c, given in scores.items()}


def test_grid_puts_the_standard_first_once_and_needs_its_chunking():
    points = grid()
    assert points[0] == STANDARD and points.count(STANDARD) == 1 and len(points) == len(set(points))
    assert {s.mode for s in points} == {"dense", "bm25", "hybrid"} and {s.chunking for s in points} == {(256, 32), (512, 64)}
    assert len(points) == 2 * (2 + 3 * 3)  # per chunking: dense, bm25, and 3 RRF k x 3 weights
    with pytest.raises(InputError, match="512/64"):
        grid(((256, 32),))
    assert parse_chunkings("256/32, 512/64") == ((256, 32), (512, 64))
    with pytest.raises(InputError, match="--chunkings"):
        parse_chunkings("64/64")


def test_the_held_out_corpus_is_never_used_to_choose():
    # BM25 is best on a and b; on c it is the worst and TUNED is far ahead
    table = _table({"a": {BM25: 0.9}, "b": {BM25: 0.8}, "c": {BM25: 0.1, TUNED: 1.0}})
    folds = {f.held_out: f for f in leave_one_out(table, SETTINGS)}
    assert folds["c"].chosen == BM25 and folds["c"].chosen_on == ["a", "b"]
    assert folds["c"].held_out_score == 0.1 and folds["c"].standard_score == 0.5
    # whatever c says, the setting chosen without it is the same
    for value in (0.0, 0.3, 1.0):
        reshuffled = {**table, "c": {s: {"recall@5": value if s != BM25 else 1 - value} for s in SETTINGS}}
        assert {f.held_out: f for f in leave_one_out(reshuffled, SETTINGS)}["c"].chosen == BM25


def test_the_standard_ships_on_a_tie_and_when_tuning_does_not_carry_over():
    flat = decide(_table({"a": {}, "b": {}, "c": {}}), SETTINGS)
    assert flat["ship"] == STANDARD and not flat["tuned_wins"]
    assert all(f.chosen == STANDARD for f in flat["folds"])
    assert choose(_table({"a": {}, "b": {}}), ["a", "b"], SETTINGS[::-1]) == STANDARD  # order aside
    # BM25 has the best mean over all three, but chosen without c it fails on c, and without a (or b) it
    # is not chosen at all: left one out it loses to the standard, so the standard ships
    table = _table({"a": {BM25: 0.7}, "b": {BM25: 0.7}, "c": {BM25: 0.2}})
    result = decide(table, SETTINGS)
    assert result["chosen_on_all"] == BM25
    assert [f.chosen for f in result["folds"]] == [STANDARD, STANDARD, BM25]
    assert result["tuned_held_out"] == pytest.approx(0.4) and result["standard_held_out"] == 0.5
    assert result["ship"] == STANDARD and not result["tuned_wins"]


def test_a_setting_that_wins_left_one_out_is_shipped():
    table = _table({"a": {TUNED: 0.7}, "b": {TUNED: 0.6}, "c": {TUNED: 0.55}})
    result = decide(table, SETTINGS)
    assert result["tuned_wins"] and result["ship"] == TUNED
    assert result["tuned_held_out"] == pytest.approx((0.7 + 0.6 + 0.55) / 3, abs=1e-4)
    with pytest.raises(InputError, match="two corpora"):
        decide(_table({"a": {}}), SETTINGS)


SQUAD = {"data": [{"title": "Rivers", "paragraphs": [
    {"context": "The Danube flows through ten countries and empties into the Black Sea near Sulina.",
     "qas": [{"id": "r1", "question": "Where does the Danube reach the sea?",
              "answers": [{"answer_start": 66, "text": "the Black Sea"}]}]},
    {"context": "The Rhine rises in the Swiss Alps and reaches the North Sea at Rotterdam.",
     "qas": [{"id": "r2", "question": "Which mountains does the Rhine start in?",
              "answers": [{"answer_start": 23, "text": "Swiss Alps"}]}]},
    {"context": "The Thames passes through Oxford and London before it meets the North Sea estuary.",
     "qas": [{"id": "r3", "question": "Which two cities lie on the Thames?",
              "answers": [{"answer_start": 26, "text": "Oxford and London"}]}]},
]}]}


def test_choice_over_three_real_corpora_is_cached_and_consistent(shared_data, tmp_path, capsys):
    from eval.retrieval_choice import main

    covid = json.loads((shared_data / "rag" / "covidqa.json").read_text())["data"][1]
    covid["paragraphs"][0]["qas"] = covid["paragraphs"][0]["qas"][:6]
    (tmp_path / "covid.json").write_text(json.dumps({"data": [covid]}))
    (tmp_path / "rivers.json").write_text(json.dumps(SQUAD))
    kb = copy_runbooks(shared_data, tmp_path / "kb", RUNBOOKS[:3])
    datasets = [f"covid={tmp_path / 'covid.json'}", f"kb={kb}", f"rivers={tmp_path / 'rivers.json'}"]

    def run(out: str) -> dict:
        args = argparse.Namespace(dataset=datasets, format="auto", limit=None, chunkings="256/32,512/64",
                                  cache=tmp_path / "cache", out=tmp_path / out, json=True)
        assert main(args) == 0
        return json.loads(capsys.readouterr().out)

    first = run("one")
    assert len(list((tmp_path / "cache").glob("*.jsonl"))) == 3 * 2  # one entry per (corpus, chunking)
    facts = first["corpora"]
    assert facts["rivers"]["questions"] == 3 and facts["kb"]["kind"] == "runbooks"
    assert all(not c["cached"] and c["ingest_chunks_per_s"] > 0 for f in facts.values() for c in f["chunkings"].values())
    assert facts["covid"]["chunkings"]["256/32"]["chunks"] > facts["covid"]["chunkings"]["512/64"]["chunks"]
    decision = first["decision"]
    for fold in decision["folds"]:  # each fold is scored with the table's own numbers
        assert fold["held_out"] not in fold["chosen_on"]
        assert fold["held_out_score"] == first["table"][fold["held_out"]][fold["chosen"]]["recall@5"]
        assert fold["standard_score"] == first["table"][fold["held_out"]][STANDARD.label()]["recall@5"]
    assert (decision["ship"] == decision["standard"]) != decision["tuned_wins"]
    assert "leave-one-corpus-out" in (tmp_path / "one" / "report.md").read_text()

    second = run("two")  # nothing ingested again, same numbers
    assert all(c["cached"] for f in second["corpora"].values() for c in f["chunkings"].values())
    assert _quality(second["table"]) == _quality(first["table"]) and second["decision"] == first["decision"]


def _quality(table: dict) -> dict:
    """The table less its latencies (hybrid's includes the fusion, timed again at each scoring)."""
    return {c: {s: {k: v for k, v in m.items() if "latency" not in k} for s, m in rows.items()}
            for c, rows in table.items()}
