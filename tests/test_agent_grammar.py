"""The tool-call grammar, checked on text with both libraries (SmolLM2's tokenizer, no model run).

Both the ChatML and the Mistral v3 call formats: what the chat format renders for a valid call is
accepted; an unknown tool, a missing required argument or a wrong type is rejected; free text is
allowed unless a call is required.
"""

from __future__ import annotations

import json

import pytest

from agent.grammar import llguidance_lark, xgrammar_structural_tag
from andini.formats import get_format
from andini.schema import Message, ToolCall, ToolSpec, plan_tool

TOOL = ToolSpec(name="create_task", parameters={
    "type": "object", "properties": {"title": {"type": "string"}, "priority": {"type": "string", "enum": ["low", "high"]},
                                     "days": {"type": "integer"}}, "required": ["title"]})


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from andini.models import model_dir

    return AutoTokenizer.from_pretrained(model_dir())


@pytest.fixture(scope="module")
def compilers(tokenizer):
    import llguidance.hf
    import xgrammar as xgr

    return {"xgrammar": xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tokenizer)),
            "llguidance": llguidance.hf.from_tokenizer(tokenizer), "tokenizer": tokenizer}


def accepts(compilers, library: str, fmt, tools, require: bool, text: str) -> bool:
    if library == "xgrammar":
        import xgrammar as xgr

        matcher = xgr.GrammarMatcher(compilers["xgrammar"].compile_structural_tag(
            json.dumps(xgrammar_structural_tag(fmt, tools, require))))
        return matcher.accept_string(text) and matcher.is_completed()
    import llguidance

    matcher = llguidance.LLMatcher(compilers["llguidance"],
                                   llguidance.LLMatcher.grammar_from_lark(llguidance_lark(fmt, tools, require)))
    ids = compilers["tokenizer"](text, add_special_tokens=False).input_ids
    return matcher.consume_tokens(ids) and matcher.is_accepting()


def rendered(fmt, name: str, arguments: dict) -> str:
    return fmt.assistant_text(Message(role="assistant", tool_calls=[ToolCall(name=name, arguments=arguments)]))


@pytest.mark.parametrize("library", ["xgrammar", "llguidance"])
@pytest.mark.parametrize("family", ["chatml", "mistral"])
def test_grammar_accepts_valid_calls_only(compilers, library, family):
    fmt = get_format(family)
    good = rendered(fmt, "create_task", {"title": "call the bank", "priority": "high", "days": 3})
    for require in (False, True):
        assert accepts(compilers, library, fmt, [TOOL], require, good)
        assert not accepts(compilers, library, fmt, [TOOL], require, rendered(fmt, "delete_all", {"title": "x"}))
        assert not accepts(compilers, library, fmt, [TOOL], require, rendered(fmt, "create_task", {"days": 3}))
        assert not accepts(compilers, library, fmt, [TOOL], require, rendered(fmt, "create_task", {"title": 5}))
        assert not accepts(compilers, library, fmt, [TOOL], require,
                           rendered(fmt, "create_task", {"title": "x", "priority": "urgent"}))
    assert accepts(compilers, library, fmt, [TOOL], False, "No tool fits; here is my answer.")
    assert not accepts(compilers, library, fmt, [TOOL], True, "No tool fits; here is my answer.")


def test_plan_schema_compiles_and_bounds_keep_it_valid(compilers):
    fmt = get_format("chatml")
    # within the default budget's bounds (an optional detail gets a share of the string cap)
    plan = {"goal": "Party", "steps": [{"title": "Invite the friends", "detail": "calls"}, {"title": "Cake"}]}
    assert accepts(compilers, "xgrammar", fmt, [plan_tool()], True, rendered(fmt, "make_plan", plan))
    assert not accepts(compilers, "xgrammar", fmt, [plan_tool()], True,
                       rendered(fmt, "make_plan", {"goal": "Party", "steps": []}))


def test_engine_factory_keeps_the_schema_property_order(compilers):
    """The prompt lists properties in schema order; the compiled grammar must expect that order too."""
    from agent.grammar import XGrammarFactory

    tokenizer = compilers["tokenizer"]
    fmt = get_format("chatml")
    factory = XGrammarFactory(tokenizer, len(tokenizer), [tokenizer.eos_token_id])
    text = rendered(fmt, "create_task", {"title": "call the bank", "priority": "high", "days": 3})
    constraint = factory.constraint(fmt, [TOOL])
    for token in tokenizer(text, add_special_tokens=False).input_ids:
        constraint.accept(token)  # raises when the grammar rejects a token
