"""Run folders, listing, and comparison reports, on two small runs over a real BFCL slice.

The model here is scripted (plumbing only: these tests are about folders and reports, not scores)."""

from __future__ import annotations

import json
import shutil

import pytest

from andini.cli import main
from eval.compare import compare_runs
from eval.reports import list_runs, load_run
from eval.toolcalls import ToolcallsConfig, run_toolcalls
from tests.eval_support import ScriptedBackend, bfcl_items


@pytest.fixture
def two_runs(shared_data, tmp_path):
    folder = shared_data / "bfcl"
    items = [i for c in ("simple_python", "parallel") for i in list(bfcl_items(folder, c))[:4]]
    config = ToolcallsConfig(data=folder, format="bfcl", categories=["simple_python", "parallel"], limit=4)
    even = ScriptedBackend(lambda i: i % 2 == 0).learn(items)
    low = run_toolcalls(config.model_copy(update={"name": "even"}), complete=even)[0]
    high = run_toolcalls(config.model_copy(update={"name": "most"}),
                         complete=ScriptedBackend(lambda i: i != 1).learn(items))[0]
    return low, high


def test_run_folder_keeps_every_item_and_summary(two_runs):
    run = load_run(two_runs[0])
    assert run["config"]["name"] == "even" and run["config"]["limit"] == 4
    assert len(run["items"]) == 8
    item = run["items"][0]
    for key in ("prompt", "raw_output", "calls", "passed", "error_type", "latency_s", "expected"):
        assert key in item
    assert "<tools>" in item["prompt"]  # the exact local prompt, tools included
    summary = run["summary"]["categories"]
    assert summary["simple_python"]["accuracy"] == 0.5 and summary["parallel"]["accuracy"] == 0.5
    failed = next(i for i in run["items"] if not i["passed"])
    assert failed["error_type"] == "no_call" and failed["error"]


def test_list_runs_newest_first(two_runs):
    runs = list_runs()
    assert [r.name for r in runs] == ["most", "even"]
    assert runs[0].complete and runs[0].kind == "toolcalls" and runs[0].headline["accuracy"] == 0.875


def test_compare_report_tables_charts_and_flips(two_runs, tmp_path):
    report = compare_runs(list(two_runs), tmp_path / "report")
    text = report.read_text()
    assert "| simple_python | 4/4 | 0.5 | 0.75 | +0.25 |" in text
    assert "| parallel | 4/4 | 0.5 | 1 | +0.5 |" in text
    assert "fail to pass (3)" in text and "pass to fail (0)" in text
    html = report.with_suffix(".html").read_text()
    assert "<table>" in html and "categories.png" in html
    for png in ("categories.png", "overall.png"):
        assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_cli_json_prints_one_object(two_runs, tmp_path, capsys):
    assert main(["eval", "compare", *map(str, two_runs), "--out", str(tmp_path / "r"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["report_md"].endswith("report.md") and len(out["charts"]) == 2


def test_compare_refuses_one_run_and_broken_items(two_runs, tmp_path, capsys):
    assert main(["eval", "compare", str(two_runs[0])]) == 1
    assert "at least two" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(two_runs[1], broken)
    with (broken / "items.jsonl").open("a") as f:
        f.write("{not json\n")
    assert main(["eval", "compare", str(two_runs[0]), str(broken)]) == 1
    assert "items.jsonl:9: invalid JSON" in capsys.readouterr().err
