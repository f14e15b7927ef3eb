"""End to end with the real local model: `andini eval toolcalls` and `andini eval plans` on small real
slices, short generations. These check the whole path (reader, prompt, model, parser, scorer, run
folder, --json), not the model's skill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from andini.cli import main
from eval.reports import load_run

pytestmark = pytest.mark.slow


def test_toolcalls_on_real_bfcl_slice_with_real_model(shared_data, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["eval", "toolcalls", "--data", str(shared_data / "bfcl"), "--format", "bfcl",
                 "--categories", "simple_python,irrelevance", "--limit", "1", "--max-new-tokens", "24",
                 "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)  # exactly one JSON object on stdout
    assert summary["run"] == str(out) and summary["overall"]["items"] == 2
    assert set(summary["categories"]) == {"simple_python", "irrelevance"}
    assert summary["overall"]["tokens_per_s"] > 0 and summary["overall"]["latency_p95_s"] > 0
    run = load_run(out)
    assert run["config"]["resolved"]["backend"] == "local" and run["config"]["constrained"] is True
    for item in run["items"]:
        assert item["prompt"].endswith("<|im_start|>assistant\n") and item["new_tokens"] > 0
        assert isinstance(item["raw_output"], str) and isinstance(item["passed"], bool)
        assert item["passed"] or item["error_type"]  # every failure says why


def test_plans_on_real_coplan_goal_with_real_model(shared_data, tmp_path, capsys):
    out = tmp_path / "plans"
    code = main(["eval", "plans", "--data", str(shared_data / "plans" / "coplan_planning_test.jsonl"),
                 "--limit", "1", "--max-new-tokens", "256", "--out", str(out), "--json"])
    # 256: the least budget in which a bounded make_plan call always closes (agent/bounds.py)
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "plans" and summary["overall"]["items"] == 1
    item = load_run(Path(summary["run"]))["items"][0]
    assert item["reference_steps"][0] == "search for survey hits"
    assert item["passed"] or item["error_type"] in ("parse_error", "schema_invalid")
