"""ChatML with tools, for SmolLM2 and other ChatML models whose own template drops tools.

The tools are listed as JSON inside `<tools>` in the system turn; each call the assistant makes is a
JSON object inside `<tool_call>...</tool_call>`; results come back in `tool` turns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from andini.formats import Segment
from andini.schema import Message, ToolCall, ToolSpec, served_schema

DEFAULT_SYSTEM = "You are a helpful assistant."
TOOLS_PREAMBLE = (
    "You can call functions. The available functions are listed in <tools></tools>. "
    "To call one, reply with a JSON object inside <tool_call></tool_call> tags: "
    '<tool_call>\n{"name": <function-name>, "arguments": <args-object>}\n</tool_call>. '
    "If no function fits, answer in plain text."
)
_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def compact_tools(tools: Sequence[ToolSpec]) -> str:
    """Tools as one JSON line each: compact, since every token of schema costs prompt length."""
    return "\n".join(json.dumps({**t.model_dump(), "parameters": readable_schema(t.parameters)},
                                ensure_ascii=False, separators=(",", ":")) for t in tools)


def readable_schema(parameters: dict | None) -> dict | None:
    """The schema as the model reads it: `$ref`s inlined, `$defs` dropped. A small model copies what it
    reads, and the base SmolLM2 filled plan steps with "#/$defs/Step" until the token limit. Only the
    prompt changes: the grammar and validation keep the schema as declared."""
    if not parameters or "$defs" not in parameters:
        return parameters
    return served_schema(parameters)


class ChatMLToolsFormat:
    name = "chatml"
    call_open = "<tool_call>\n"
    call_close = "\n</tool_call>"
    end_of_turn = "<|im_end|>"
    calls_as_list = False
    control_tokens: tuple[str, ...] = ()

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec],
               add_generation_prompt: bool = False) -> list[Segment]:
        msgs = list(messages)
        system = msgs.pop(0).content if msgs and msgs[0].role == "system" else DEFAULT_SYSTEM
        if tools:
            system = f"{system}\n\n{TOOLS_PREAMBLE}\n<tools>\n{compact_tools(tools)}\n</tools>"
        segments = [Segment(f"<|im_start|>system\n{system}<|im_end|>\n")]
        for m in msgs:
            if m.role == "assistant":
                segments.append(Segment("<|im_start|>assistant\n"))
                segments.append(Segment(self.assistant_text(m) + self.end_of_turn, train=True))
                segments.append(Segment("\n"))
            else:
                segments.append(Segment(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n"))
        if add_generation_prompt:
            segments.append(Segment("<|im_start|>assistant\n"))
        return segments

    def assistant_text(self, m: Message) -> str:
        calls = "\n".join(f"{self.call_open}{c.to_json()}{self.call_close}" for c in m.tool_calls)
        return "\n".join(part for part in (m.content, calls) if part)

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        text = text.replace(self.end_of_turn, "")
        calls = []
        for raw in _CALL_RE.findall(text):
            data = json.loads(raw)
            if not isinstance(data, dict) or "name" not in data:
                raise ValueError(f"tool call is not an object with a name: {raw[:200]}")
            calls.append(ToolCall(name=data["name"], arguments=data.get("arguments") or {}))
        content = _CALL_RE.sub("", text).strip()
        if "<tool_call>" in content:
            raise ValueError(f"unterminated <tool_call> in output: {content[:200]}")
        return content, calls
