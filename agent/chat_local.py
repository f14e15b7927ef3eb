"""`LocalChatModel`: the embedded transformers model as a LangChain chat model with tools.

`ChatHuggingFace` over a local pipeline cannot do tools (bind_tools has no effect and a ToolMessage in
the history raises), so this is our own `BaseChatModel`. It renders prompts through `andini.formats`,
generates with the tools' grammar (agent/grammar.py), streams the plain-text part of the answer as
tokens, and returns tool calls as LangChain `tool_calls` (or `invalid_tool_calls` when the output was
cut short, so the agent's validation guard can ask again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from agent.messages import from_langchain, new_call_id
from agent.validate import tool_specs
from andini.schema import ToolSpec


class TextGate:
    """Passes streamed text through until the call-open tag starts; holds back a possible prefix of it."""

    def __init__(self, tag: str):
        self.tag, self.seen, self.sent, self.closed = tag, "", 0, False

    def feed(self, piece: str) -> str:
        if self.closed:
            return ""
        self.seen += piece
        cut = self.seen.find(self.tag)
        if cut >= 0:
            self.closed = True
            out = self.seen[self.sent:cut]
        else:
            hold = next((n for n in range(len(self.tag) - 1, 0, -1) if self.seen.endswith(self.tag[:n])), 0)
            out = self.seen[self.sent:len(self.seen) - hold]
        self.sent += len(out)
        return out


def pick_tools(tools: list[ToolSpec], tool_choice: Any) -> tuple[list[ToolSpec], bool]:
    """(offered tools, whether a call is required) for an OpenAI-style tool_choice."""
    if tool_choice in (None, "auto", False):
        return tools, False
    if tool_choice == "none":
        return [], False
    if isinstance(tool_choice, dict):
        name = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
        return [t for t in tools if t.name == name] or tools, True
    if isinstance(tool_choice, str) and tool_choice not in ("required", "any"):
        return [t for t in tools if t.name == tool_choice] or tools, True
    return tools, True


class LocalChatModel(BaseChatModel):
    """The in-process model. Tool calls are grammar-constrained unless `constrained` is False."""

    model_name: str | None = Field(None, description="Local model folder; None means the default SmolLM2.")
    adapter: str | None = Field(None, description="PEFT adapter folder applied on top.")
    constrained: bool = Field(True, description="Generate tool calls under the tools' grammar.")
    max_new_tokens: int = Field(256, ge=1, description="Generation limit per call.")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy.")
    grammar_library: str = Field("xgrammar", description="xgrammar or llguidance.")

    @property
    def _llm_type(self) -> str:
        return "andini-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model_name, "adapter": self.adapter, "constrained": self.constrained}

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        from langchain_core.utils.function_calling import convert_to_openai_tool

        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        from agent.local import get_engine

        engine = get_engine(self.model_name, self.adapter)
        offered, required = pick_tools(tool_specs(kwargs.get("tools") or []), kwargs.get("tool_choice"))
        gate = TextGate(engine.fmt.call_open.strip())

        def on_token(piece: str) -> None:
            text = gate.feed(piece)
            if text and run_manager is not None:
                run_manager.on_llm_new_token(text, chunk=ChatGenerationChunk(message=AIMessageChunk(content=text)))

        gen = engine.generate(from_langchain(messages), offered, constrained=self.constrained,
                              require_call=required, max_new_tokens=kwargs.get("max_new_tokens", self.max_new_tokens),
                              temperature=self.temperature, on_token=on_token, library=self.grammar_library)
        if offered:
            message = to_ai_message(engine.fmt, gen.text, gen.finished)
        else:  # nothing to call: call-shaped text the model writes anyway is its answer, not a failed call
            message = AIMessage(gen.text.split(engine.fmt.call_open.strip())[0].strip() or gen.text.strip())
        message.usage_metadata = {"input_tokens": gen.prompt_tokens, "output_tokens": gen.new_tokens,
                                  "total_tokens": gen.prompt_tokens + gen.new_tokens}
        message.response_metadata = {"ttft_s": gen.ttft_s, "latency_s": gen.latency_s, "raw": gen.text,
                                     "finished": gen.finished, "stopped_before_call": gen.stopped_before_call,
                                     "model_name": engine.name}
        return ChatResult(generations=[ChatGeneration(message=message)])


def to_ai_message(fmt: Any, text: str, finished: bool) -> AIMessage:
    """An AIMessage from raw generated text: tool calls parsed, or reported invalid with the reason."""
    try:
        content, calls = fmt.parse(text)
    except ValueError as exc:
        reason = str(exc) if finished else f"output cut off by the token limit ({exc})"
        head = text.split(fmt.call_open.strip())[0].strip()
        return AIMessage(head, invalid_tool_calls=[{"name": None, "args": text, "id": new_call_id(),
                                                    "error": reason, "type": "invalid_tool_call"}])
    tool_calls = [{"name": c.name, "args": c.arguments, "id": new_call_id(), "type": "tool_call"}
                  for c in calls]
    return AIMessage(content, tool_calls=tool_calls)
