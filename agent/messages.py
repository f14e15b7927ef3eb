"""Conversions between LangChain messages and andini's `Message` records, and tool-call ids."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from andini.schema import Message, ToolCall


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [c.get("text", "") if isinstance(c, dict) else str(c) for c in content or []]
    return "".join(parts)


def from_langchain(messages: Sequence[Any]) -> list[Message]:
    """andini Messages from LangChain messages (system, human, ai with tool calls, tool)."""
    out = []
    for m in messages:
        kind = getattr(m, "type", "")
        if kind == "system":
            out.append(Message(role="system", content=text_of(m.content)))
        elif kind == "human":
            out.append(Message(role="user", content=text_of(m.content)))
        elif kind in ("ai", "AIMessageChunk"):
            calls = [ToolCall(name=c["name"], arguments=c.get("args") or {}) for c in m.tool_calls]
            out.append(Message(role="assistant", content=text_of(m.content), tool_calls=calls))
        elif kind == "tool":
            out.append(Message(role="tool", content=text_of(m.content), name=getattr(m, "name", None),
                               tool_call_id=m.tool_call_id))
    return out


def to_langchain(messages: Sequence[Message]) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    out: list[Any] = []
    for m in messages:
        if m.role == "system":
            out.append(SystemMessage(m.content))
        elif m.role == "user":
            out.append(HumanMessage(m.content))
        elif m.role == "assistant":
            calls = [{"name": c.name, "args": c.arguments, "id": new_call_id(), "type": "tool_call"}
                     for c in m.tool_calls]
            out.append(AIMessage(m.content, tool_calls=calls))
        else:
            out.append(ToolMessage(m.content, name=m.name, tool_call_id=m.tool_call_id or new_call_id()))
    # a tool turn must answer the call id of the assistant turn before it
    pending: list[str | None] = []
    for msg in out:
        if isinstance(msg, AIMessage):
            pending = [c["id"] for c in msg.tool_calls]
        elif isinstance(msg, ToolMessage) and pending:
            msg.tool_call_id = pending.pop(0) or msg.tool_call_id
    return out


def openai_arguments(raw: Any) -> dict[str, Any]:
    """Tool-call arguments as a dict: OpenAI sends a JSON string, older TGI sends an object."""
    if isinstance(raw, dict):
        return raw
    if raw in (None, ""):
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"tool arguments are not a JSON object: {raw!r:.200}")
    return value
