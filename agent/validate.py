"""Checking a model's tool calls against the offered tools' JSON Schemas, before anything runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from andini.schema import ToolCall, ToolSpec


def call_errors(call: ToolCall, tools: Sequence[ToolSpec]) -> list[str]:
    """What is wrong with `call` (unknown tool, missing or mistyped arguments); empty when valid."""
    import jsonschema

    by_name = {t.name: t for t in tools}
    if call.name not in by_name:
        offered = ", ".join(sorted(by_name)) or "none"
        return [f"unknown tool '{call.name}' (offered: {offered})"]
    schema = by_name[call.name].parameters or {"type": "object"}
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{call.name}: {'/'.join(map(str, e.absolute_path)) or 'arguments'}: {e.message}"
            for e in sorted(validator.iter_errors(call.arguments), key=lambda e: list(e.path))]


def calls_error(calls: Sequence[ToolCall], tools: Sequence[ToolSpec]) -> str | None:
    """One message for all invalid calls, or None."""
    problems = [p for c in calls for p in call_errors(c, tools)]
    return "; ".join(problems) or None


def tool_specs(tools: Sequence[Any]) -> list[ToolSpec]:
    """ToolSpecs from anything LangChain accepts as a tool (BaseTool, function, OpenAI dict, ToolSpec)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    specs = []
    for tool in tools:
        if isinstance(tool, ToolSpec):
            specs.append(tool)
        else:
            specs.append(ToolSpec.from_openai(convert_to_openai_tool(tool)))
    return specs
