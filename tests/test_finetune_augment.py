"""Augmentations and type repair: each transform is seeded, keeps targets verified, and says what it made."""

from andini.calls import invalid_calls
from andini.schema import Example, Message, ToolCall, ToolSpec
from finetune import augment
from finetune.readers import IRRELEVANT_REPLY, read_examples
from finetune.validate import example_problems, repair_types


def tool(fn, description, **props):
    return ToolSpec(name=fn, description=description, parameters={
        "type": "object", "required": list(props)[:1], "properties": {k: {"type": v} for k, v in props.items()}})


WEATHER = tool("get_weather", "Current weather for a city", city="string", unit="string")
FORECAST = tool("get_weather_forecast_week", "Weather forecast of the coming days for a city", city="string",
                days="integer")
STOCK = tool("get_stock_price", "Price of a stock on the exchange", symbol="string")
AREA = tool("triangle_area", "Area of a triangle from base and height", base="number", height="number")


def ex(i, query, t, args, others=()):
    return Example(id=f"e{i}", messages=[Message(role="user", content=query)], tools=[t, *others],
                   target_calls=[ToolCall(name=t.name, arguments=args)], source="test")


EXAMPLES = [ex(0, "Weather in Paris?", WEATHER, {"city": "Paris"}),
            ex(1, "Weather in Rome, in celsius?", WEATHER, {"city": "Rome", "unit": "c"}),
            ex(2, "What does AAPL trade at?", STOCK, {"symbol": "AAPL"}),
            ex(3, "Area of a triangle with base 3 and height 4?", AREA, {"base": 3, "height": 4}),
            ex(4, "Forecast for Oslo, five days", FORECAST, {"city": "Oslo", "days": 5})]


def test_composition_builds_targets_from_the_parts():
    parallel = augment.compose(EXAMPLES, 1, same_function=True, seed=0)
    assert len(parallel) == 1 and [c.name for c in parallel[0].target_calls] == ["get_weather", "get_weather"]
    assert {"Paris", "Rome"} == {c.arguments["city"] for c in parallel[0].target_calls}
    assert "Paris" in parallel[0].messages[0].content and "Rome" in parallel[0].messages[0].content
    multi = augment.compose(EXAMPLES, 3, same_function=False, seed=0)
    assert multi and all(len({c.name for c in m.target_calls}) == len(m.target_calls) > 1 for m in multi)
    for m in [*parallel, *multi]:
        assert not example_problems(m) and m.meta["augment"][0].startswith("compose_")
        assert [t.name for t in m.tools] == list(dict.fromkeys(c.name for c in m.target_calls))
    assert augment.compose(EXAMPLES, 3, same_function=False, seed=0) == multi  # seeded


def test_distractors_are_the_similar_tools_not_random_ones():
    index = augment.ToolIndex(EXAMPLES)
    assert [t.name for t in index.similar([WEATHER], 1)] == ["get_weather_forecast_week"]
    near_copy = tool("get_weather_now", "Current weather for a city", city="string", unit="string")
    index.add(near_copy)  # near-identical: either could be right, so never a distractor
    assert "get_weather_now" not in [t.name for t in index.similar([WEATHER], 5)]
    out = augment.add_distractors(EXAMPLES[:1], 1, seed=0, index=augment.ToolIndex(EXAMPLES))
    assert {t.name for t in out[0].tools} == {"get_weather", "get_weather_forecast_week"}
    assert out[0].target_calls == EXAMPLES[0].target_calls and out[0].meta["augment"] == ["distractors"]


def test_distractors_stop_where_the_example_would_no_longer_fit():
    # The budget counts offered tools here; in `andini data build` it is the rendering's tokens.
    index = augment.ToolIndex(EXAMPLES)
    unlimited = augment.add_distractors(EXAMPLES[:1], 3, seed=0, index=index)
    assert len(unlimited[0].tools) == 4
    fewer = augment.add_distractors(EXAMPLES[:1], 3, seed=0, index=index, fits=lambda e: len(e.tools) <= 2)
    assert len(fewer[0].tools) == 2 and fewer[0].meta["augment"] == ["distractors"]
    assert {t.name for t in fewer[0].tools} < {t.name for t in unlimited[0].tools}  # the same draw, cut short
    untouched = augment.add_distractors(EXAMPLES[:1], 3, seed=0, index=index, fits=lambda e: len(e.tools) <= 1)
    assert untouched == EXAMPLES[:1]  # no distractor fits: the example as it was, not dropped


def test_irrelevance_by_removal_keeps_only_tools_that_were_not_called():
    with_distractor = augment.add_distractors(EXAMPLES, 1, seed=0)
    out = augment.irrelevance_by_removal(with_distractor, 2, seed=0)
    assert len(out) == 2
    for item in out:
        original = next(e for e in EXAMPLES if e.id == item.id.removesuffix("-removed"))
        assert item.target_calls == [] and item.target_text == IRRELEVANT_REPLY and item.meta["irrelevance"]
        assert original.target_calls[0].name not in {t.name for t in item.tools} and item.tools


def test_masking_renames_consistently_and_stays_valid():
    masked = augment.mask_names(EXAMPLES[1], seed=0)
    (call,) = masked.target_calls
    assert call.name.startswith("fn_") and call.name == masked.tools[0].name
    assert set(call.arguments) <= set(masked.tools[0].parameters["properties"])
    assert masked.tools[0].parameters["required"][0] in call.arguments
    assert sorted(call.arguments.values()) == ["Rome", "c"] and masked.tools[0].description == WEATHER.description
    assert not invalid_calls(masked.target_calls, masked.tools) and augment.mask_names(EXAMPLES[1], 0) == masked


def test_argument_order_follows_the_shuffled_schema():
    for seed in range(6):
        out = augment.shuffle_arguments(EXAMPLES[3], seed)
        assert list(out.target_calls[0].arguments) == [
            k for k in out.tools[0].parameters["properties"] if k in out.target_calls[0].arguments]
        assert out.target_calls[0].arguments == EXAMPLES[3].target_calls[0].arguments


def test_type_repair_is_lossless_and_counted():
    schema = tool("enroll", "Enroll someone", age="integer", score="number", member="boolean", name="string")
    call = ToolCall(name="enroll", arguments={"age": "63", "score": "2.5", "member": "true", "name": "42"})
    fixed, counts = repair_types(Example(id="x", messages=[], tools=[schema], target_calls=[call]))
    assert fixed.target_calls[0].arguments == {"age": 63, "score": 2.5, "member": True, "name": "42"}
    assert counts == {"integer": 1, "number": 1, "boolean": 1}
    for bad in ("063", "1e3", "six", " "):  # not exactly a number: left alone, so validation still drops it
        kept, n = repair_types(Example(id="y", messages=[], tools=[schema],
                                       target_calls=[ToolCall(name="enroll", arguments={"age": bad})]))
        assert kept.target_calls[0].arguments == {"age": bad} and not n


def test_real_seal_examples_are_repaired_not_dropped(shared_data):
    from finetune.validate import check_file

    path = shared_data / "toolcalls" / "seal-tools" / "dev.jsonl"
    plain = sum(e is not None for e, _ in check_file(path, "seal"))
    repaired = [e for e, _ in check_file(path, "seal", repair=True) if e is not None]
    assert len(repaired) > plain
    assert all(not example_problems(e) for e in repaired if e.meta.get("repaired"))
    assert len(list(read_examples(path, "seal"))) >= len(repaired)
