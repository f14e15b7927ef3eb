"""The one call validator and matcher (andini.calls), as the agent, the data checks and the scores see it."""

from __future__ import annotations

import json

from andini.calls import (
    call_problems,
    calls_error,
    invalid_calls,
    match_calls,
    reference_label,
    resolve_references,
)
from andini.schema import Example, Message, ToolCall, ToolSpec

WEATHER = ToolSpec(name="get_weather", parameters={
    "type": "object", "additionalProperties": False, "required": ["city"],
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]},
                   "days": {"type": "integer"},
                   "where": {"type": "object", "properties": {"lat": {"type": "number"}}}}})
TIME = ToolSpec(name="get_time", parameters={"type": "object", "properties": {"city": {"type": "string"}}})


def messages(name: str, **arguments) -> list[str]:
    return [str(p) for p in call_problems(ToolCall(name=name, arguments=arguments), [WEATHER, TIME])]


def test_each_message_names_the_call_the_argument_and_the_rule():
    assert messages("get_weather", city="Oslo", unit="kelvin") == [
        "get_weather: argument 'unit': 'kelvin' is not one of ['c', 'f']"]
    assert messages("get_weather", unit="c") == ["get_weather: argument 'city': required, but missing"]
    assert messages("get_weather", city="Oslo", days="two") == [
        "get_weather: argument 'days': 'two' is not of type 'integer'"]
    assert messages("get_weather", city="Oslo", where={"lat": "north"}) == [
        "get_weather: argument 'where.lat': 'north' is not of type 'number'"]
    assert messages("get_weather", city="Oslo", colour="red", size=2) == [
        "get_weather: argument 'colour': not a parameter of get_weather (parameters: city, days, unit, where)",
        "get_weather: argument 'size': not a parameter of get_weather (parameters: city, days, unit, where)"]
    assert messages("get_wether", city="Oslo") == ["get_wether: not an offered tool (offered: get_time, get_weather)"]
    assert messages("get_weather", city="Oslo", unit="f") == []


def test_problems_keep_the_rule_for_counting():
    rules = [p.rule for p in call_problems(ToolCall(name="get_weather", arguments={"unit": "k", "x": 1}), [WEATHER])]
    assert sorted(rules) == ["additionalProperties", "enum", "required"]
    assert call_problems(ToolCall(name="nope"), [])[0].rule == "unknown_tool"


def test_all_problems_for_the_model_one_per_invalid_call_for_scores():
    calls = [ToolCall(name="get_weather", arguments={"unit": "k"}), ToolCall(name="get_time", arguments={}),
             ToolCall(name="mail")]
    joined = calls_error(calls, [WEATHER, TIME])
    assert joined.count("; ") == 2 and "'city': required" in joined and "mail: not an offered tool" in joined
    assert invalid_calls(calls, [WEATHER, TIME]) == [
        "get_weather: argument 'city': required, but missing", "mail: not an offered tool (offered: get_time, get_weather)"]
    assert calls_error(calls[1:2], [TIME]) is None


def test_a_nestful_reference_is_checked_for_presence_not_type():
    for written in ("$var1.days$", "$var_1.days$"):  # the data writes var1; models also write var_1
        call = ToolCall(name="get_weather", arguments={"city": "$var2.name$", "days": written})
        assert invalid_calls([call], [WEATHER], references=True) == []
        assert invalid_calls([call], [WEATHER]) == ["get_weather: argument 'days': "
                                                    f"'{written}' is not of type 'integer'"]
    assert reference_label("$var_12.x.y$") == reference_label("$var12$") == "var12"
    assert reference_label("see $var1.x$ here") is None and reference_label(5) is None
    missing = ToolCall(name="get_weather", arguments={"days": "$var1.n$"})
    assert invalid_calls([missing], [WEATHER], references=True) == ["get_weather: argument 'city': required, but missing"]


def test_matching_normalises_strings_and_numbers_and_ignores_order():
    expected = [ToolCall(name="get_weather", arguments={"city": "New York", "days": 2}),
                ToolCall(name="get_time", arguments={"city": "Oslo"})]
    predicted = [ToolCall(name="get_time", arguments={"city": "oslo"}),
                 ToolCall(name="get_weather", arguments={"city": "new-york", "days": 2.0})]
    match = match_calls(predicted, expected)
    assert match.exact and match.call.matched == 2
    assert not match_calls(predicted, expected, ordered=True).exact
    half = match_calls([predicted[0], ToolCall(name="get_weather", arguments={"city": "Paris", "days": 2})], expected)
    assert not half.exact
    assert (half.tool.matched, half.param.matched, half.param.expected, half.call.matched) == (2, 2, 3, 1)
    assert half.call.scores() == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_references_resolve_whatever_the_labels_and_the_spelling():
    search = ToolCall(name="search", arguments={"q": "London"})
    book = ToolCall(name="book", arguments={"place": "$var1.id$"})
    expected = [search, book]
    renamed = [search, ToolCall(name="book", arguments={"place": "$var_1.id$"})]
    assert match_calls(renamed, expected, references=True, expected_labels=["var1", "var2"]).exact
    # the same chain with the reference pointing at a call that was not made cannot match
    dangling = [search, ToolCall(name="book", arguments={"place": "$var7.id$"})]
    assert not match_calls(dangling, expected, references=True).exact
    resolved = resolve_references(expected)[1].arguments["place"]
    assert resolved.startswith("$") and json.loads(resolved[1:-4]) == ["search", {"q": "london"}]


def test_the_data_check_reports_the_same_message_with_its_field():
    from finetune.validate import example_problems

    example = Example(id="x", messages=[Message(role="user", content="weather?")], tools=[WEATHER],
                      target_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo", "unit": "kelvin"})])
    assert example_problems(example) == [("target_calls[0].arguments.unit",
                                          "get_weather: argument 'unit': 'kelvin' is not one of ['c', 'f']", "enum")]
