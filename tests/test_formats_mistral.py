"""Mistral v3 format: token-exact against mistral-common's own encoding, and exact assistant-only masks
for both families (Mistral and SmolLM2's ChatML)."""

import json

import pytest

from andini.formats import get_format, prompt_text
from andini.formats.mistral import MistralV3Format, call_id
from andini.schema import Example, Message, Plan, Step, ToolCall, ToolSpec
from finetune.render import IGNORE, assistant_text, mistral_tokenizer, render_example

WEATHER = ToolSpec(name="get_weather", description="Current weather in a city.", parameters={
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
    "required": ["city"]})
TIME = ToolSpec(name="get_time", description="Local time.", parameters={
    "type": "object", "properties": {"city": {"type": "string"}}})


def conversation() -> Example:
    """System prompt, two user turns, parallel calls with results, text answers, a final call."""
    return Example(id="c", tools=[WEATHER, TIME], messages=[
        Message(role="system", content="Answer briefly."),
        Message(role="user", content="Weather and time in Paris?"),
        Message(role="assistant", tool_calls=[ToolCall(name="get_weather", arguments={"city": "Paris"}),
                                              ToolCall(name="get_time", arguments={"city": "Paris"})]),
        Message(role="tool", name="get_weather", content='{"temp": 21, "sky": "clear"}'),
        Message(role="tool", name="get_time", content="14:05"),
        Message(role="assistant", content="21 °C and clear; it is 14:05."),
        Message(role="user", content="And in Oslo, in Fahrenheit?")],
        target_calls=[ToolCall(name="get_weather", arguments={"city": "Oslo", "unit": "F"})])


def mistral_common_request(example: Example):
    """The same conversation as mistral-common's own request objects (the reference encoder)."""
    from mistral_common.protocol.instruct.messages import (
        AssistantMessage,
        SystemMessage,
        ToolMessage,
        UserMessage,
    )
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool
    from mistral_common.protocol.instruct.tool_calls import ToolCall as MCall

    messages, pending = [], []
    turns = [*example.messages, example.target_message()]
    for i, m in enumerate(turns[1:] if turns[0].role == "system" else turns):
        if m.role == "user":
            messages.append(UserMessage(content=m.content))
        elif m.role == "tool":
            messages.append(ToolMessage(content=m.content, tool_call_id=pending.pop(0)))
        elif m.tool_calls:
            ids = [call_id(i, j, c.name) for j, c in enumerate(m.tool_calls)]
            pending = list(ids)
            messages.append(AssistantMessage(tool_calls=[
                MCall(id=cid, function=FunctionCall(name=c.name, arguments=json.dumps(c.arguments)))
                for cid, c in zip(ids, m.tool_calls, strict=True)]))
        else:
            messages.append(AssistantMessage(content=m.content))
    if turns[0].role == "system":
        messages.insert(0, SystemMessage(content=turns[0].content))
    tools = [Tool(function=Function(**t.model_dump())) for t in example.tools] or None
    return ChatCompletionRequest(messages=messages, tools=tools)


def mistral_common_tokens(example: Example) -> list[int]:
    return mistral_tokenizer().encode_chat_completion(mistral_common_request(example)).tokens


def test_mistral_rendering_equals_mistral_common_token_for_token():
    example = conversation()
    ids, _ = render_example(example, mistral_tokenizer(), "mistral")
    assert ids == mistral_common_tokens(example)


def test_mistral_prompt_ends_where_the_assistant_continues():
    text = prompt_text(MistralV3Format(), conversation().messages, [WEATHER, TIME])
    assert text.startswith("<s>[INST] Weather and time in Paris?[/INST][TOOL_CALLS] [")
    assert "[AVAILABLE_TOOLS]" in text and text.endswith("[INST] Answer briefly.\n\nAnd in Oslo, in Fahrenheit?[/INST]")
    assert text.index("[AVAILABLE_TOOLS]") > text.index("[TOOL_RESULTS]")  # tools go with the last user turn


def test_mistral_parse_round_trip():
    fmt = get_format("mistral")
    call = ToolCall(name="get_weather", arguments={"city": "Oslo", "unit": "F"})
    text = fmt.assistant_text(Message(role="assistant", tool_calls=[call]), ["abcdefghi"]) + "</s>"
    assert fmt.parse(text) == ("", [call])
    assert fmt.parse(" Just text.</s>") == ("Just text.", [])
    with pytest.raises(ValueError):
        fmt.parse("[TOOL_CALLS] [{not json")


def examples_for_masks() -> list[Example]:
    plan = Plan(goal="move house", steps=[Step(title="pack"), Step(title="drive")])
    return [conversation(),
            Example(id="p", messages=[Message(role="user", content="Plan my move.")], target_plan=plan),
            Example(id="i", messages=[Message(role="user", content="Tell me a joke.")], tools=[WEATHER],
                    target_text="No tool fits; here is one: ...")]


def unmasked(ids: list[int], labels: list[int]) -> list[int]:
    assert len(ids) == len(labels)
    assert all(label in (IGNORE, token) for token, label in zip(ids, labels, strict=True))
    return [token for token, label in zip(ids, labels, strict=True) if label != IGNORE]


@pytest.mark.parametrize("example", examples_for_masks(), ids=lambda e: e.id)
def test_mistral_labels_are_exactly_the_assistant_tokens(example):
    """Unmasked ids == mistral-common's encoding of each assistant message, in every turn, and nothing else."""
    from mistral_common.protocol.instruct.messages import AssistantMessage

    tok = mistral_tokenizer()
    ids, labels = render_example(example, tok, "mistral")
    assert ids == mistral_common_tokens(example)
    request = mistral_common_request(example)
    expected = []
    for m in request.messages:
        if isinstance(m, AssistantMessage):
            expected += tok.instruct_tokenizer.encode_assistant_message(m, is_before_last_user_message=False)
    assert unmasked(ids, labels) == expected
    assert labels[0] == IGNORE and labels[-1] == ids[-1] == tok.instruct_tokenizer.tokenizer.eos_id


def test_chatml_labels_are_exactly_the_assistant_tokens():
    from transformers import AutoTokenizer

    from andini.models import model_dir

    tok = AutoTokenizer.from_pretrained(model_dir())
    for example in examples_for_masks():
        ids, labels = render_example(example, tok, "chatml")
        trained = unmasked(ids, labels)
        expected = assistant_text(example, "chatml")
        assert tok.decode(trained) == expected
        # segment-wise ids equal tokenizing the whole text at once: what inference sees
        whole = "".join(s.text for s in get_format("chatml").render(
            [*example.messages, example.target_message()], example.tools))
        assert ids == tok(whole, add_special_tokens=False)["input_ids"]
        assert expected.count("<|im_end|>") == sum(
            m.role == "assistant" for m in [*example.messages, example.target_message()])
