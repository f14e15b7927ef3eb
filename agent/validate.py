"""The agent's tools as `ToolSpec`s, so that its calls are checked by the one validator in
`andini.calls` (the same that checks training data and scores evaluations) before anything runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from andini.schema import ToolSpec


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
