"""Chat formats: how a model family sees tools and tool calls as text, and how its output is parsed back.

One format object owns rendering for both inference (the prompt) and training (the same text, with a
flag on every segment saying whether it is the assistant's and so trained on). That is what keeps
train/serve parity: `finetune/` and `agent/` both render through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from andini.schema import Message, ToolCall, ToolSpec


@dataclass(frozen=True)
class Segment:
    """A run of prompt text; `train` marks the assistant's own tokens (the only ones with labels)."""

    text: str
    train: bool = False


class ChatFormat(Protocol):
    name: str
    #: Text the assistant emits to open a tool call; a grammar starts from it.
    call_open: str
    call_close: str
    #: Text that ends an assistant turn.
    end_of_turn: str

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec],
               add_generation_prompt: bool = False) -> list[Segment]: ...

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        """Split generated assistant text into (plain content, tool calls). Raises ValueError on a bad call."""
        ...


def get_format(name_or_model: str) -> ChatFormat:
    """The format for a family name ('chatml', 'mistral') or a model id/path that names one."""
    key = name_or_model.lower()
    if "mistral" in key:
        from andini.formats.mistral import MistralV3Format

        return MistralV3Format()
    from andini.formats.chatml import ChatMLToolsFormat

    return ChatMLToolsFormat()


def prompt_text(fmt: ChatFormat, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
    """The full inference prompt, ready for the assistant to continue."""
    return "".join(s.text for s in fmt.render(messages, tools, add_generation_prompt=True))
