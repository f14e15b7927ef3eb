"""Mistral v0.3 (tokenizer v3) with tools, as `mistral-common` encodes it.

The text uses the control tokens as written in the vocabulary: `[AVAILABLE_TOOLS]`, `[INST]`,
`[TOOL_CALLS]`, `[TOOL_RESULTS]`, `</s>`. Every piece of content after a control token starts with one
space, which is SentencePiece's prefix on each separately encoded piece; so splitting this text at
the control tokens and encoding each piece alone gives exactly mistral-common's token ids (a test in
tests/test_formats_mistral.py compares them). Layout, after mistral-common's InstructTokenizerV3:

    <s>[INST] u1[/INST] a1</s>[AVAILABLE_TOOLS] [..tools..][/AVAILABLE_TOOLS][INST] system\n\nu2[/INST]
    [TOOL_CALLS] [{"name": .., "arguments": {..}, "id": ".."}]</s>[TOOL_RESULTS] {"content": .., "call_id": ..}[/TOOL_RESULTS]

Tools and the system prompt go with the last user turn only. An assistant turn carries either tool
calls or text, never both (v3 rejects both), so text beside calls is dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from andini.formats import Segment
from andini.schema import Message, ToolCall, ToolSpec

CONTROL_TOKENS = ("<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
                  "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]")


def call_id(turn: int, index: int, name: str) -> str:
    """A deterministic 9-character call id (v3 requires one to pair calls with results)."""
    return hashlib.sha1(f"{turn}:{index}:{name}".encode()).hexdigest()[:9]


def _parse_json_content(content: str) -> Any:
    """Tool results that are JSON are inlined as JSON, as mistral-common does."""
    try:
        return json.loads(content)
    except json.JSONDecodeError:
        return content


def _piece(text: str) -> str:
    """Content as one SentencePiece-encoded piece: a leading space stands for the '▁' prefix."""
    return f" {text}" if text else ""


class MistralV3Format:
    name = "mistral"
    call_open = "[TOOL_CALLS] "
    call_close = ""
    end_of_turn = "</s>"
    calls_as_list = True
    control_tokens: tuple[str, ...] = CONTROL_TOKENS

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec],
               add_generation_prompt: bool = False) -> list[Segment]:
        msgs = list(messages)
        system = msgs.pop(0).content if msgs and msgs[0].role == "system" else ""
        last_user = max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)
        segments = [Segment("<s>")]
        pending_ids: list[str] = []
        for i, m in enumerate(msgs):
            if m.role == "user":
                prefix = self._tools_block(tools) if i == last_user and tools else ""
                content = f"{system}\n\n{m.content}" if i == last_user and system else m.content
                segments.append(Segment(f"{prefix}[INST]{_piece(content)}[/INST]"))
            elif m.role == "assistant":
                ids = [call_id(i, j, c.name) for j, c in enumerate(m.tool_calls)]
                pending_ids = list(ids)
                segments.append(Segment(self.assistant_text(m, ids) + self.end_of_turn, train=True))
            elif m.role == "tool":
                cid = m.tool_call_id or (pending_ids.pop(0) if pending_ids else call_id(i, 0, m.name or "tool"))
                result = {"content": _parse_json_content(m.content), "call_id": cid}
                segments.append(Segment(f"[TOOL_RESULTS]{_piece(json.dumps(result, ensure_ascii=False))}"
                                        "[/TOOL_RESULTS]"))
            else:
                raise ValueError(f"Mistral v3 has no place for a {m.role!r} turn after the first message")
        return segments  # the prompt already ends where the assistant continues

    def _tools_block(self, tools: Sequence[ToolSpec]) -> str:
        listed = [{"type": "function", "function": t.model_dump()} for t in tools]
        return f"[AVAILABLE_TOOLS]{_piece(json.dumps(listed, ensure_ascii=False))}[/AVAILABLE_TOOLS]"

    def assistant_text(self, m: Message, ids: Sequence[str] | None = None) -> str:
        if m.tool_calls:
            given: list[str | None] = list(ids) if ids else [None] * len(m.tool_calls)
            calls = []
            for call, cid in zip(m.tool_calls, given, strict=True):
                entry: dict[str, Any] = {"name": call.name, "arguments": call.arguments}
                if cid:
                    entry["id"] = cid
                calls.append(entry)
            return self.call_open + json.dumps(calls, ensure_ascii=False)
        return _piece(m.content.rstrip(" "))

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        text = text.replace(self.end_of_turn, "").strip()
        if not text.startswith("[TOOL_CALLS]"):
            return text, []
        raw = text.removeprefix("[TOOL_CALLS]").strip()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"[TOOL_CALLS] is not followed by JSON: {exc.msg}: {raw[:200]}") from exc
        items = data if isinstance(data, list) else [data]
        calls = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ValueError(f"tool call is not an object with a name: {json.dumps(item)[:200]}")
            args = item.get("arguments") or {}
            if isinstance(args, str):
                args = json.loads(args)
            calls.append(ToolCall(name=item["name"], arguments=args))
        return "", calls
