"""Bad input gives an error that names the file and the line; readers' edge cases as eval sees them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from andini.calls import invalid_calls, match_calls
from andini.cli import main
from andini.errors import InputError
from andini.schema import Example, Message, ToolCall, ToolSpec
from eval.toolcalls import EvalItem, ToolcallsConfig, load_items, score


def _slice(shared_data: Path, tmp_path: Path, category: str, n: int = 3, answers: bool = True) -> Path:
    """The first n items of a real BFCL category (and their answers) in a folder of their own."""
    folder = tmp_path / "bfcl"
    (folder / "possible_answer").mkdir(parents=True, exist_ok=True)
    name = f"BFCL_v4_{category}.json"
    lines = (shared_data / "bfcl" / name).read_text().splitlines()[:n]
    (folder / name).write_text("\n".join(lines) + "\n")
    if answers:
        truth = (shared_data / "bfcl" / "possible_answer" / name).read_text().splitlines()[:n]
        (folder / "possible_answer" / name).write_text("\n".join(truth) + "\n")
    return folder / name


def _load(path: Path, fmt: str = "bfcl", **kw) -> list[EvalItem]:
    return load_items(ToolcallsConfig(data=path, format=fmt, **kw))


def test_missing_answers_file_names_it(shared_data, tmp_path):
    data = _slice(shared_data, tmp_path, "multiple", answers=False)
    with pytest.raises(InputError, match=r"possible_answer/BFCL_v4_multiple.json: answers file not found"):
        _load(data)


def test_irrelevance_needs_no_answers_file(shared_data, tmp_path):
    items = _load(_slice(shared_data, tmp_path, "irrelevance", answers=False))
    assert [i.category for i in items] == ["irrelevance"] * 3 and items[0].ground_truth is None


def test_id_mismatch_names_data_file_and_line(shared_data, tmp_path):
    data = _slice(shared_data, tmp_path, "parallel")
    answers = data.parent / "possible_answer" / data.name
    lines = answers.read_text().splitlines()
    lines[1] = lines[1].replace('"parallel_1"', '"parallel_99"')
    answers.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"BFCL_v4_parallel.json:2: item 'parallel_1' has no answer"):
        _load(data)
    lines[1] = lines[1].replace('"parallel_99"', '"parallel_1"')
    answers.write_text("\n".join([*lines, lines[0].replace('"parallel_0"', '"parallel_7"')]) + "\n")
    with pytest.raises(InputError, match=r"possible_answer/BFCL_v4_parallel.json:4: answer for 'parallel_7'"):
        _load(data)


def test_malformed_line_names_file_and_line(shared_data, tmp_path, capsys):
    data = _slice(shared_data, tmp_path, "simple_python")
    lines = data.read_text().splitlines()
    data.write_text("\n".join([lines[0], lines[1][:-5], lines[2]]) + "\n")
    code = main(["eval", "toolcalls", "--data", str(data.parent), "--format", "bfcl", "--limit", "1"])
    assert code == 1
    assert f"{data}:2: invalid JSON" in capsys.readouterr().err


def test_missing_field_and_unknown_category(shared_data, tmp_path):
    data = _slice(shared_data, tmp_path, "simple_python")
    record = json.loads(data.read_text().splitlines()[0])
    del record["function"]
    data.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match=r":1: missing \(field 'function'\)"):
        _load(data)
    with pytest.raises(InputError, match="no file for categories"):
        _load(data.parent, categories=["java"])


def test_out_folder_is_never_overwritten(shared_data, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    code = main(["eval", "toolcalls", "--data", str(shared_data / "bfcl"), "--format", "bfcl",
                 "--out", str(out), "--limit", "1"])
    assert code == 1 and "not empty" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == "{}"


def test_limit_applies_per_category(shared_data):
    items = _load(shared_data / "bfcl", limit=2)
    assert [i.category for i in items] == [c for c in ("simple_python", "multiple", "parallel",
                                                        "parallel_multiple", "irrelevance") for _ in (0, 1)]
    assert all(i.ground_truth for i in items if i.category != "irrelevance")


def test_seal_references_and_any_order(shared_data):
    items = _load(shared_data / "toolcalls" / "seal-tools" / "dev.jsonl", "seal")
    chained = next(i for i in items if any("API_call_0" in json.dumps(c.arguments)
                                            for c in i.example.target_calls))
    target = chained.example.target_calls
    assert score(chained, list(reversed(target)), None, "seal")["passed"]
    broken = [target[0].model_copy(update={"arguments": {**target[0].arguments, "extra": 1}}), *target[1:]]
    verdict = score(chained, broken, None, "seal")
    assert not verdict["passed"] and verdict["match"]["call"]["matched"] == len(target) - 1
    assert verdict["match"]["tool"]["matched"] == len(target)


def test_nestful_references_resolve_whatever_the_labels(shared_data):
    path = shared_data / "toolcalls" / "nestful" / "executable-data.json"
    item = _load(path, "nestful", limit=1)[0]
    target = item.example.target_calls  # var1, var2 searches, var3 uses both, var4, var5 uses var4
    assert item.example.meta["labels"][:2] == ["var1", "var2"]
    assert score(item, list(target), None, "nestful")["passed"]
    # The model lists the two airport searches the other way round and renumbers its references.
    swapped = [target[1], target[0], target[2].model_copy(update={"arguments": {
        k: v.replace("$var1", "$varX").replace("$var2", "$var1").replace("$varX", "$var2")
        for k, v in target[2].arguments.items()}}), *target[3:]]
    assert score(item, swapped, None, "nestful")["passed"]
    wrong_ref = [*target[:2], target[2].model_copy(update={"arguments": {
        k: v.replace("$var1", "$var2") for k, v in target[2].arguments.items()}}), *target[3:]]
    assert not score(item, wrong_ref, None, "nestful")["passed"]


def test_no_call_expected_and_schema_validity():
    tool = ToolSpec(name="add", parameters={"type": "object", "required": ["a"],
                                            "properties": {"a": {"type": "integer"}}})
    example = Example(id="x", messages=[Message(role="user", content="hello")], tools=[tool], target_text="Hi!")
    item = EvalItem(example, "chat", Path("x.jsonl"), 1)
    assert score(item, [], None, "andini")["passed"]
    called = score(item, [ToolCall(name="add", arguments={"a": "one"})], None, "andini")
    assert called["error_type"] == "irrelevance:called"
    assert called["schema_errors"] == ["add: argument 'a': 'one' is not of type 'integer'"]
    assert invalid_calls([ToolCall(name="mul", arguments={})], [tool]) == ["mul: not an offered tool (offered: add)"]
    assert match_calls([], []).exact


def test_parse_failure_is_its_own_error_type(shared_data, tmp_path):
    item = _load(_slice(shared_data, tmp_path, "simple_python", n=1))[0]
    verdict = score(item, [], "unterminated <tool_call>", "bfcl")
    assert verdict == {"schema_errors": [], "passed": False, "error_type": "parse_error",
                       "error": "unterminated <tool_call>"}
    shutil.rmtree(tmp_path / "bfcl")


def test_tool_choice_reaches_the_backend_and_names_the_run(shared_data, tmp_path):
    from eval.toolcalls import run_toolcalls
    from tests.eval_support import ScriptedBackend, bfcl_items

    seen = []

    class Recording(ScriptedBackend):
        def __call__(self, messages, tools, **options):
            seen.append(options)
            return super().__call__(messages, tools, **options)

    items = list(bfcl_items(shared_data / "bfcl", "simple_python"))[:1]
    config = ToolcallsConfig(data=shared_data / "bfcl", format="bfcl", categories=["simple_python"], limit=1,
                             tool_choice="required", constrained=True)
    run_dir, summary = run_toolcalls(config, complete=Recording().learn(items))
    assert seen[0]["tool_choice"] == "required" and seen[0]["constrained"] is True
    assert run_dir.name.endswith("toolcalls-default-required") and summary["overall"]["accuracy"] == 1.0


def test_declining_is_scored_from_both_sides():
    from eval.runs import wilson_interval
    from eval.toolcalls import summarise

    def row(category, expected, calls):
        return {"category": category, "expected": expected, "calls": calls, "passed": bool(expected) == bool(calls),
                "schema_errors": [], "parse_error": None, "latency_s": 1.0, "new_tokens": 1, "error_type": None}

    call = {"name": "f", "arguments": {}}
    rows = [row("simple", [call], []), row("simple", [call], [call]), row("simple", [call], [call]),
            row("irrelevance", [], [call]), row("irrelevance", [], [])]
    summary = summarise(rows, "bfcl")
    simple, irrelevance = summary["categories"]["simple"], summary["categories"]["irrelevance"]
    assert simple["expect_call_items"] == 3 and simple["no_call_where_expected"] == round(1 / 3, 4)
    assert simple["expect_none_items"] == 0 and simple["call_where_none_expected"] is None
    assert irrelevance["call_where_none_expected"] == 0.5 and irrelevance["no_call_where_expected"] is None
    assert summary["overall"]["no_call_where_expected_ci95"] == wilson_interval(1, 3)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.27 < high < 0.29  # the rule-of-three neighbourhood, never a zero-width interval
    assert wilson_interval(5, 10) == (0.2366, 0.7634) and wilson_interval(0, 0) is None


def test_plan_scores_come_with_their_intervals():
    from eval.plans import summarise_plans
    from eval.runs import bootstrap_interval, wilson_interval

    def row(passed, rouge):
        return {"passed": passed, "parse_error": None, "step_count_error": 1, "rouge_l_f": rouge,
                "latency_s": 1.0, "new_tokens": 10}

    rows = [row(True, r) for r in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)] + [row(False, None)]
    overall = summarise_plans(rows)["overall"]
    assert overall["schema_valid_ci95"] == wilson_interval(6, 7)
    low, high = overall["rouge_l_f_ci95"]
    assert low < overall["rouge_l_f"] == 0.35 < high and 0.1 <= low and high <= 0.6  # invalid plans not scored
    assert bootstrap_interval([0.4] * 5) == (0.4, 0.4) and bootstrap_interval([]) is None
    assert overall["rouge_l_f_ci95"] == summarise_plans(rows)["overall"]["rouge_l_f_ci95"]  # seeded
