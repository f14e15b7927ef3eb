"""Readers and validation on real slices of the shared data sets, and the errors bad input gets."""

import json

import pytest

from andini.errors import InputError
from finetune.readers import FORMATS, bfcl_category, parse_script, read_examples, to_json_schema
from finetune.validate import check_file, check_report, example_problems


def first(path, fmt, n=1):
    it = read_examples(path, fmt)
    return [next(it) for _ in range(n)]


def test_bfcl_types_answers_and_category(shared_data):
    path = shared_data / "bfcl" / "BFCL_v4_parallel_multiple.json"
    ex = first(path, "bfcl")[0]
    assert ex.meta["category"] == "parallel_multiple" and ex.source == "bfcl"
    assert ex.tools[0].parameters["type"] == "object"  # BFCL's "dict"
    assert ex.meta["ground_truth"][0]["math_toolkit.sum_of_multiples"]["multiples"] == [[3, 5]]
    assert [c.name for c in ex.target_calls] == ["math_toolkit.sum_of_multiples", "math_toolkit.product_of_primes"]
    assert ex.target_calls[0].arguments == {"lower_limit": 1, "upper_limit": 1000, "multiples": [3, 5]}


def test_bfcl_optional_empty_answer_is_left_out_and_nested_answers_resolved(shared_data):
    simple = first(shared_data / "bfcl" / "BFCL_v4_simple_python.json", "bfcl")[0]
    assert simple.target_calls[0].arguments == {"base": 10, "height": 5, "unit": "units"}
    multiple = list(read_examples(shared_data / "bfcl" / "BFCL_v4_multiple.json", "bfcl"))
    nested = next(e for e in multiple if e.id == "multiple_8")
    assert nested.target_calls[0].arguments["budget"] == {"min": 300000, "max": 400000}


def test_bfcl_irrelevance_targets_text(shared_data):
    ex = first(shared_data / "bfcl" / "BFCL_v4_irrelevance.json", "bfcl")[0]
    assert ex.meta["category"] == "irrelevance" and not ex.target_calls and ex.target_text
    assert "ground_truth" not in ex.meta


def test_bfcl_type_mapping():
    schema = to_json_schema({"type": "dict", "properties": {
        "x": {"type": "float"}, "t": {"type": "tuple", "items": {"type": "integer"}}, "a": {"type": "any"}}})
    assert schema == {"type": "object", "properties": {
        "x": {"type": "number"}, "t": {"type": "array", "items": {"type": "integer"}}, "a": {}}}
    assert bfcl_category(__import__("pathlib").Path("BFCL_v4_simple_python.json")) == "simple_python"


def test_seal_tools_docs_and_python_types(shared_data):
    ex = first(shared_data / "toolcalls" / "seal-tools" / "dev.jsonl", "seal")[0]
    assert ex.id == "dev-easy-0" and ex.target_calls[0].name == "getHealthWorkforce"
    tool = ex.tools[0]
    assert tool.name == "getHealthWorkforce" and tool.parameters["properties"]["location"]["type"] == "string"
    assert tool.parameters["required"] == ["location"]


def test_seal_chained_calls_keep_order(shared_data):
    examples = list(read_examples(shared_data / "toolcalls" / "seal-tools" / "dev.jsonl", "seal"))
    chained = next(e for e in examples if e.id == "dev-difficult-200")
    assert [c.name for c in chained.target_calls] == ["getPlantingInstructions", "searchCrop", "getAvailableResources"]
    assert chained.target_calls[2].arguments["location"] == "API_call_1"


def test_nestful_references_and_labels(shared_data):
    ex = first(shared_data / "toolcalls" / "nestful" / "executable-data.json", "nestful")[0]
    assert ex.target_calls[2].arguments["originSkyId"] == "$var1.skyId$"
    assert ex.meta["labels"][:3] == ["var1", "var2", "var3"]
    assert ex.meta["result"] == {"flights": "$var3$", "hotels": "$var5$"}
    assert "var_result" not in [c.name for c in ex.target_calls]
    assert not example_problems(ex)  # references are not type-checked


def test_glaive_calls_and_observations(shared_data):
    ex = first(shared_data / "toolcalls" / "glaive" / "glaive_toolcall_en_demo.json", "glaive")[0]
    roles = [m.role for m in ex.messages]
    assert roles == ["user", "assistant", "user", "assistant", "tool", "assistant", "user"]
    assert ex.messages[3].tool_calls[0].arguments == {"ingredients": ["chicken", "bell peppers", "rice"]}
    assert ex.messages[4].name == "search_recipes" and ex.target_text.startswith("I'm sorry")


def test_coplan_goal_to_plan(shared_data):
    ex = first(shared_data / "plans" / "coplan_constrained_test.jsonl", "coplan")[0]
    assert ex.target_plan.goal == "accept survey hit" and ex.meta["condition"]
    assert ex.target_plan.steps[0].title == "research the company you want to work for"
    assert [s.title for s in parse_script("Step 1: a b Step 2: c")] == ["a b", "c"]


def test_openai_and_andini_round_trip(tmp_path):
    line = {"messages": [{"role": "user", "content": "weather in Paris?"},
                         {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
                             "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}
    src = tmp_path / "chat.jsonl"
    src.write_text(json.dumps(line) + "\n")
    ex = first(src, "openai")[0]
    assert ex.target_calls[0].arguments == {"city": "Paris"} and not example_problems(ex)
    own = tmp_path / "own.jsonl"
    own.write_text(ex.model_dump_json() + "\n")
    assert first(own, "andini")[0] == ex


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "ok", "calling": []}\n{"query": \n')
    with pytest.raises(InputError) as err:
        list(read_examples(path, "andini"))
    assert err.value.line in (1, 2) and str(path) in str(err.value)


def test_missing_field_names_line_and_field(tmp_path):
    path = tmp_path / "dev.jsonl"
    (tmp_path / "tool.jsonl").write_text(json.dumps({"api_name": "f", "parameters": {}, "required": []}) + "\n")
    path.write_text(json.dumps({"query": "q", "calling": [{"api": "f", "parameters": {}}]}) + "\n"
                    + json.dumps({"query": "q2"}) + "\n")
    with pytest.raises(InputError) as err:
        list(read_examples(path, "seal"))
    assert (err.value.line, err.value.field) == (2, "calling")


def test_unknown_format_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="unknown format 'alpaca'") as err:
        list(read_examples(tmp_path / "x.jsonl", "alpaca"))
    assert all(f in err.value.hint for f in FORMATS)


def test_validation_reports_file_line_field(tmp_path):
    tool = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}
    rows = [
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
            {"function": {"name": "f", "arguments": {"n": 1}}}]}], "tools": [tool]},
        {"messages": [{"role": "user", "content": "b"}, {"role": "assistant", "tool_calls": [
            {"function": {"name": "g", "arguments": {}}}]}], "tools": [tool]},
        {"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "tool_calls": [
            {"function": {"name": "f", "arguments": {"n": "one"}}}]}], "tools": [tool]},
        {"messages": [{"role": "user", "content": "d"}, {"role": "assistant", "tool_calls": [
            {"function": {"name": "f", "arguments": {}}}]}], "tools": [tool]},
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = [p for _, p in check_file(path, "openai") if p]
    assert [(p.line, p.field) for p in problems] == [
        (2, "target_calls[0].name"), (3, "target_calls[0].arguments.n"), (4, "target_calls[0].arguments.n")]
    assert "not an offered tool" in problems[0].reason and "required" in problems[2].reason
    report = check_report(path, "openai")
    assert report["valid"] == 1 and report["invalid"] == 3
    with pytest.raises(InputError) as err:
        list(check_file(path, "openai", strict=True))
    assert err.value.line == 2


def test_real_seal_data_has_type_errors_that_are_reported(shared_data):
    report = check_report(shared_data / "toolcalls" / "seal-tools" / "dev.jsonl", "seal", limit=1)
    assert report["valid"] + report["invalid"] == 700 and report["invalid"] > 0
    assert report["problems"][0]["line"] and report["problems"][0]["field"].startswith("target_calls")
