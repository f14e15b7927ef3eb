"""`andini generate`: schemas loaded and checked (errors name the file and the JSON pointer), the
grammar's reach measured, and one small schema end to end on the real SmolLM2 model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agent.bounds import RECURSION_DEPTH, BudgetError
from agent.generate import (
    DEFAULT_MAX_NEW_TOKENS,
    GenerationFailed,
    dump,
    generate,
    grammar_schema,
    with_decline,
)
from andini.docschema import load_schema
from andini.errors import AndiniError, InputError

SCHEMAS = Path(__file__).resolve().parent.parent / "benchmarks" / "schemas"
TRIP = {"type": "object", "title": "trip",
        "properties": {"city": {"enum": ["Paris", "Rome", "Oslo"]},
                       "days": {"type": "integer", "minimum": 1, "maximum": 14}},
        "required": ["city", "days"], "additionalProperties": False}


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_refs_inside_the_file_and_beside_it_are_bundled(tmp_path):
    write(tmp_path, "common.yaml", "$defs:\n  port: {type: integer, minimum: 1, maximum: 65535}\n")
    main = write(tmp_path, "svc.json", json.dumps({
        "type": "object", "properties": {"port": {"$ref": "common.yaml#/$defs/port"},
                                         "tree": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array",
                                                                     "items": {"$ref": "#/$defs/node"}}}}}}))
    doc = load_schema(main)
    text = json.dumps(doc.bundled)
    assert "common.yaml" not in text and "#/$defs/node" not in text  # self-contained
    assert doc.errors({"port": 80, "tree": {"kids": [{"kids": []}]}}) == []
    assert doc.errors({"port": 0, "tree": {"kids": [{"kids": 3}]}}) == [
        "at /port: 0 is less than the minimum of 1 (minimum)",
        "at /tree/kids/0/kids: 3 is not of type 'array' (type)"]


@pytest.mark.parametrize("name, text, expected", [
    ("broken.json", '{"type": \n', "broken.json:2: not JSON"),
    ("broken.yaml", "type: [object\n", "broken.yaml:2: neither JSON nor YAML"),
    ("list.yaml", "- 1\n- 2\n", "list.yaml: not a schema: the top level is list"),
    ("typo.json", '{"properties": {"n": {"type": "integr"}}}', "typo.json: not a valid JSON Schema: at "
                                                                "/properties/n/type:"),
    ("minimum.json", '{"minimum": "five"}', "not a valid JSON Schema: at /minimum: 'five' is not of type"),
    ("missing.json", '{"properties": {"x": {"$ref": "#/$defs/nope"}}}',
     "missing.json: at /properties/x/$ref: cannot resolve '#/$defs/nope'"),
    ("elsewhere.json", '{"items": {"$ref": "other.json#/a"}}', "at /items/$ref: cannot resolve 'other.json#/a'"),
])
def test_bad_schema_files_name_the_file_and_the_pointer(tmp_path, name, text, expected):
    with pytest.raises(InputError) as err:
        load_schema(write(tmp_path, name, text))
    assert expected in str(err.value)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(InputError, match="nope.json: no such file"):
        load_schema(tmp_path / "nope.json")


def test_keywords_the_grammar_cannot_enforce_are_named_with_their_pointer(tmp_path):
    schema = {"type": "object", "properties": {
        "mode": {"oneOf": [{"const": "a"}, {"type": "string"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "job": {"$ref": "#/$defs/job"}},
        "$defs": {"job": {"not": {"type": "null"}}}}
    doc = load_schema(schema)
    assert [(u.keyword, u.pointer) for u in doc.unenforced] == [
        ("oneOf", "/properties/mode/oneOf"), ("uniqueItems", "/properties/tags/uniqueItems"),
        ("not", "#/$defs/job/not")]
    with pytest.raises(InputError, match="cannot honour oneOf at /properties/mode/oneOf"):
        generate(schema, "anything", strict=True)


def test_what_xgrammar_enforces_matches_the_list():
    """The grammar's reach, measured: every keyword listed as unenforced lets a violating document
    through the compiled grammar, and the enforced ones stop it."""
    import xgrammar as xgr
    from xgrammar.testing import _is_grammar_accept_string as accepts

    cases = {"oneOf": ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, "3", False),
             "uniqueItems": ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "[1, 1]", False),
             "not": ({"not": {"type": "integer"}}, "3", False),
             "pattern": ({"type": "string", "pattern": "^[a-z]+$"}, '"ABC"', True),
             "maximum": ({"type": "integer", "maximum": 5}, "7", True),
             "enum": ({"enum": ["a", "b"]}, '"c"', True),
             "minItems": ({"type": "array", "items": {"type": "integer"}, "minItems": 2}, "[1]", True),
             "contains": ({"type": "array", "items": {"type": "integer"}, "contains": {"const": 5}}, "[1]", False),
             "minLength beside pattern": ({"type": "string", "pattern": "^[a-z]+$", "minLength": 3}, '"ab"', False),
             "maxLength": ({"type": "string", "maxLength": 3}, '"abcd"', True),
             "maxProperties": ({"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 1},
                               '{"a": 1, "b": 2}', True),
             "format": ({"type": "string", "format": "date"}, '"yesterday"', True)}
    for keyword, (schema, bad, enforced) in cases.items():
        grammar = xgr.Grammar.from_json_schema(json.dumps(schema), strict_mode=True)
        assert (not accepts(grammar, bad)) == enforced, keyword
        assert bool(load_schema(schema).unenforced) == (not enforced), keyword


def test_decline_is_offered_beside_the_schema_with_its_definitions_at_the_root():
    doc = load_schema({"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}},
                       "$defs": {"a": {"type": "string"}}})
    schema = with_decline(doc.grammar)
    assert set(schema) == {"anyOf", "$defs"} and schema["anyOf"][1]["required"] == ["cannot_express"]
    bounded = grammar_schema(doc, allow_decline=True).schema  # what the decoder compiles: refs inlined
    assert "$ref" not in json.dumps(bounded) and bounded["anyOf"][0]["properties"]["a"]["type"] == "string"


# ---------------------------------------------------------------- the bounded grammar (agent/bounds.py)


def test_a_schema_that_cannot_fit_is_refused_naming_schema_pointer_and_budget(tmp_path):
    path = tmp_path / "deployment.schema.json"
    path.write_text((SCHEMAS / "deployment.schema.json").read_text())
    with pytest.raises(BudgetError) as err:
        grammar_schema(load_schema(path), False, 100)
    message = str(err.value)
    assert f"{path} cannot fit a budget of 100 tokens" in message
    assert "the largest part, /$defs/container," in message and "raise max_new_tokens to at least" in message


def test_every_benchmark_schema_fits_the_default_budget():
    for path in sorted(SCHEMAS.glob("*.schema.*")):
        bounded = grammar_schema(load_schema(path), True, DEFAULT_MAX_NEW_TOKENS)
        assert bounded.worst_tokens <= DEFAULT_MAX_NEW_TOKENS and not bounded.dropped, path


def test_recursion_is_cut_at_the_bound_and_refused_where_required():
    from jsonschema import Draft202012Validator

    tree = {"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 8}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["name"], "additionalProperties": False}}}
    doc = load_schema(tree)
    bounded = grammar_schema(doc, False).schema
    check = Draft202012Validator(bounded)

    def deep(levels: int) -> dict:
        return {"name": "n"} if levels == 0 else {"name": "n", "kids": [deep(levels - 1)]}

    assert check.is_valid(deep(RECURSION_DEPTH)) and not check.is_valid(deep(RECURSION_DEPTH + 1))
    assert doc.errors(deep(RECURSION_DEPTH + 1)) == []  # a tightening: the person's schema admits both
    chain = {"$ref": "#/$defs/n", "$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}},
                                                 "required": ["next"]}}}
    with pytest.raises(BudgetError, match=r"chain.json: cannot bound /\$defs/n/properties/next: required, and it "
                                          r"recurses"):
        grammar_schema(load_schema(chain, name="chain.json"), False)


def test_a_pattern_is_shortened_to_its_maxlength_and_an_unbounded_one_refused():
    """Grammars drop maxLength beside a pattern; the bounded pattern holds it, matching only what the
    original matches."""
    import re

    image = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._/-]{0,40}(:[A-Za-z0-9._-]{1,20})?$", "maxLength": 30}
    pattern = grammar_schema(load_schema(image), False).schema["pattern"]
    assert pattern == "^[a-z0-9][a-z0-9._/-]{0,13}(:[A-Za-z0-9._-]{1,15}){0,1}$"
    longest = "a" + "b" * 13 + ":" + "C" * 15
    assert re.fullmatch(pattern[1:-1], longest) and re.fullmatch(image["pattern"][1:-1], longest)
    assert len(longest) == 30 and not load_schema(image).unenforced
    with pytest.raises(BudgetError, match=r"p.json: cannot bound /properties/id/pattern: '\^\[a-z\]\+\$' has no "
                                          r"longest match"):
        grammar_schema(load_schema({"type": "object", "properties": {"id": {"type": "string", "pattern": "^[a-z]+$"}}},
                                   name="p.json"), False)


def test_an_optional_group_is_written_so_that_xgrammar_compiles_it_right():
    """xgrammar 0.2.8 mis-compiles `(...)?` ending in a counted repetition; `{0,1}` says the same."""
    import xgrammar as xgr
    from xgrammar.testing import _is_grammar_accept_string as accepts

    schema = {"type": "string", "pattern": "^a(:[A-Z]{1,2})?$"}
    raw = xgr.Grammar.from_json_schema(json.dumps(schema), strict_mode=True, any_whitespace=False)
    assert accepts(raw, '"aA"')  # the bug, measured: the ':' is skipped
    fixed = xgr.Grammar.from_json_schema(json.dumps(grammar_schema(load_schema(schema), False).schema),
                                         strict_mode=True, any_whitespace=False)
    assert not accepts(fixed, '"aA"') and accepts(fixed, '"a:A"') and accepts(fixed, '"a"')


def test_keywords_the_bounded_grammar_drops_are_reported():
    bounded = grammar_schema(load_schema({"type": "object", "properties": {
        "mail": {"type": "string", "format": "email"}, "day": {"type": "string", "format": "date"}}}), False)
    assert [(u.keyword, u.pointer) for u in bounded.dropped] == [("format", "/properties/mail/format")]


def test_yaml_round_trips_to_the_same_json():
    document = {"on": {"push": {"branches": ["main"]}}, "yes": "no", "n": 1.5, "empty": None, "s": "08"}
    assert yaml.safe_load(dump(document, yaml=True)) == json.loads(dump(document))


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_servers_get_the_schema_and_an_invalid_reply_goes_back_with_its_error(model_server, backend):
    model_server.replies += [{"text": '{"city": "Lyon", "days": 3}'}, {"text": '{"city": "Rome", "days": 3}'}]
    out = generate(TRIP, "Three days in Rome", backend=backend)
    assert out.document == {"city": "Rome", "days": 3} and out.attempts == 2
    assert out.enforcement == "server+validation"
    first, second = model_server.requests[-2:]
    fmt = first["response_format"]
    schema = fmt["value"] if backend == "tgi" else fmt["json_schema"]["schema"]
    assert schema["properties"]["city"]["enum"] == ["Paris", "Rome", "Oslo"]
    assert "'Lyon' is not one of" in second["messages"][-1]["content"]


def test_after_the_last_attempt_the_failure_carries_the_output_and_the_count(model_server):
    model_server.replies += [{"text": "not json"}, {"text": '{"city": "Rome"}'}]
    with pytest.raises(GenerationFailed) as err:
        generate(TRIP, "Three days in Rome", backend="tgi", attempts=2)
    assert err.value.attempts == 2 and err.value.last_output == '{"city": "Rome"}'
    assert "after 2 attempt(s)" in str(err.value) and "'days' is a required property" in str(err.value)


def test_an_empty_intent_is_refused():
    with pytest.raises(AndiniError, match="intent is empty"):
        generate(TRIP, "  ")


@pytest.mark.slow
def test_the_real_model_writes_a_valid_document_and_yaml(tmp_path):
    path = write(tmp_path, "trip.yaml", yaml.safe_dump(TRIP))
    out = generate(path, "Plan a trip: four days in Oslo.", yaml=True, max_new_tokens=48)
    assert load_schema(path).errors(out.document) == []
    assert out.enforcement == "grammar" and out.backend == "local" and out.attempts >= 1
    assert yaml.safe_load(out.text) == out.document


# ---------------------------------------------------------------- the command


def cli(*argv: str) -> int:
    from andini.cli import main

    return main(list(argv))


def test_cli_names_the_file_and_pointer_of_a_bad_schema(tmp_path, capsys):
    path = write(tmp_path, "svc.json", '{"properties": {"port": {"$ref": "#/$defs/port"}}}')
    assert cli("generate", "--schema", str(path), "a service on port 80") == 1
    err = capsys.readouterr().err
    assert "svc.json: at /properties/port/$ref: cannot resolve '#/$defs/port'" in err and "fix:" in err


def test_cli_exit_status_says_failed_or_declined(tmp_path, capsys, model_server):
    path = write(tmp_path, "trip.json", json.dumps(TRIP))
    model_server.replies += [{"text": '{"city": "Lyon", "days": 3}'}]
    assert cli("generate", "--schema", str(path), "Lyon", "--backend", "tgi", "--attempts", "1", "--json") == 3
    failed = json.loads(capsys.readouterr().out)
    assert failed["ok"] is False and failed["attempts"] == 1 and failed["last_output"] == '{"city": "Lyon", "days": 3}'
    model_server.replies += [{"text": '{"cannot_express": "no Lyon in the enum"}'}]
    assert cli("generate", "--schema", str(path), "Lyon", "--backend", "tgi", "--allow-decline") == 4
    assert "declined: no Lyon in the enum" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_writes_a_valid_yaml_file_with_the_real_model(tmp_path, capsys):
    path = write(tmp_path, "trip.yaml", yaml.safe_dump(TRIP))
    out = tmp_path / "out" / "trip.yaml"
    out.parent.mkdir()
    assert cli("generate", "--schema", str(path), "Two days in Rome", "--yaml", "--out", str(out),
               "--max-new-tokens", "48", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["format"] == "yaml" and report["out"] == str(out)
    assert yaml.safe_load(out.read_text()) == report["document"]
    assert load_schema(path).errors(report["document"]) == []


def test_field_match_compares_places_and_normalised_values():
    from eval.documents import match_document

    reference = {"name": "Todo-CLI", "scripts": {"start": "node index.js"}, "tags": ["a", "b"], "n": 5}
    generated = {"name": "todo cli", "scripts": {"start": "node main.js"}, "tags": ["b", "a"], "n": 5.0, "x": True}
    found = match_document(generated, reference)
    assert (found.matched, found.generated, found.expected) == (2, 6, 5)  # name and n; tags are in order
    assert found.recall == 0.4 and found.precision == pytest.approx(2 / 6)
    assert match_document(None, reference).matched == 0 and match_document(reference, reference).f1 == 1.0


def test_keywords_beside_anyof_reach_the_grammar():
    """xgrammar drops the keywords beside an anyOf (any value passes); the grammar's form moves them
    into each branch, and a branch that restates one differently is reported instead."""
    import xgrammar as xgr
    from xgrammar.testing import _is_grammar_accept_string as accepts

    step = {"type": "object", "properties": {"uses": {"type": "string"}, "run": {"type": "string"}},
            "additionalProperties": False, "anyOf": [{"required": ["uses"]}, {"required": ["run"]}]}
    doc = load_schema({"type": "array", "items": {"$ref": "#/$defs/step"}, "$defs": {"step": step}})
    grammar = xgr.Grammar.from_json_schema(json.dumps(doc.grammar), strict_mode=True)
    assert not accepts(grammar, '["x"]') and not accepts(grammar, "[{}]")
    assert accepts(grammar, '[{"uses": "a"}, {"run": "b"}]') and not doc.unenforced
    assert doc.errors(["x"]) and not doc.errors([{"run": "b"}])  # validation still reads the bundle
    clash = load_schema({"type": "object", "anyOf": [{"type": "string"}, {"required": ["a"]}]})
    assert [(u.keyword, u.pointer) for u in clash.unenforced] == [("anyOf", "/anyOf")]
