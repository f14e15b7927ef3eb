import json
import subprocess
import sys

import pytest

from andini.errors import InputError
from andini.formats import get_format, prompt_text
from andini.schema import Example, Message, Plan, ToolCall, ToolSpec
from andini.settings import Settings, get_settings


def test_settings_from_env_are_typed(monkeypatch, andini_home):
    monkeypatch.setenv("ANDINI_SEARCH_K", "7")
    monkeypatch.setenv("ANDINI_CHROMA_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    s = get_settings()
    assert s.search_k == 7 and s.chroma_url == "http://127.0.0.1:9" and s.home == andini_home


def test_settings_read_config_file_and_env_wins(monkeypatch, andini_home):
    (andini_home / "config.toml").write_text('collection = "notes"\nsearch_k = 3\n')
    monkeypatch.setenv("ANDINI_SEARCH_K", "9")
    s = Settings()
    assert s.collection == "notes" and s.search_k == 9


def test_input_error_names_file_line_field():
    err = InputError("not a number", path="data.jsonl", line=4, field="arguments.k")
    assert str(err) == "data.jsonl:4: not a number (field 'arguments.k')"


def test_chatml_round_trip_and_masks():
    fmt = get_format("chatml")
    tools = [ToolSpec(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})]
    call = ToolCall(name="get_weather", arguments={"city": "Paris"})
    msgs = [Message(role="user", content="Weather in Paris?"), Message(role="assistant", tool_calls=[call])]
    segs = fmt.render(msgs, tools)
    trained = "".join(s.text for s in segs if s.train)
    assert trained == f'<tool_call>\n{call.to_json()}\n</tool_call><|im_end|>'
    content, calls = fmt.parse(trained)
    assert content == "" and calls == [call]
    assert prompt_text(fmt, msgs[:1], tools).endswith("<|im_start|>assistant\n")


def test_chatml_prompt_inlines_schema_references():
    declared = ToolSpec(name="make_plan", parameters=Plan.model_json_schema())
    prompt = prompt_text(get_format("chatml"), [Message(role="user", content="plan")], [declared])
    listed = json.loads(prompt.split("<tools>\n")[1].split("\n</tools>")[0])
    assert "$defs" not in prompt and "$ref" not in prompt
    step = listed["parameters"]["properties"]["steps"]["items"]
    assert step["required"] == ["title"] and "tool_call" in step["properties"]
    assert "$defs" in declared.parameters  # the declared schema, which the grammar and validation use, is kept


def test_chatml_parse_rejects_broken_call():
    with pytest.raises(ValueError):
        get_format("chatml").parse("<tool_call>\n{\"name\": \"x\"")


def test_plan_target_is_a_make_plan_call():
    plan = Plan(goal="g", steps=[{"title": "a"}])
    ex = Example(id="1", messages=[Message(role="user", content="g")], target_plan=plan)
    target = ex.target_message()
    assert target.content == "" and target.tool_calls == [ToolCall(name="make_plan", arguments={
        "goal": "g", "steps": [{"title": "a"}]})]


def test_help_is_fast_and_imports_nothing_heavy():
    code = ("import sys, time; t=time.time(); from andini.cli import build_parser; build_parser();"
            "heavy=[m for m in ('torch','transformers','chromadb','langchain','streamlit','llama_index') if m in sys.modules];"
            "print(heavy, time.time()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("[]"), out
    help_text = subprocess.run([sys.executable, "-m", "andini.cli", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "usage: andini" in help_text
