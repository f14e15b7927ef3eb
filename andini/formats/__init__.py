"""Chat formats: how a model family sees tools and tool calls as text, and how its output is parsed back.

One format object owns rendering for both inference (the prompt) and training (the same text, with a
flag on every segment saying whether it is the assistant's and so trained on). That is what keeps
train/serve parity: `finetune/` and `agent/` both render through here. Which format a checkpoint uses
is read from its files, once, by `detect_format`: training, serving and evaluation all ask it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, get_args

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
    #: A turn's calls are one JSON list after a single `call_open`, and nothing follows them (Mistral
    #: v3); else each call is written alone between `call_open` and `call_close`, text around it.
    calls_as_list: bool
    #: Non-empty: the reference tokenizer is mistral-common's, which writes these tokens as single ids
    #: and encodes each piece of text between them alone. Empty: the checkpoint's HF tokenizer encodes
    #: a segment whole.
    control_tokens: tuple[str, ...]

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec],
               add_generation_prompt: bool = False) -> list[Segment]: ...

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        """Split generated assistant text into (plain content, tool calls). Raises ValueError on a bad call."""
        ...


FormatName = Literal["chatml", "mistral"]
FORMAT_NAMES: tuple[str, ...] = get_args(FormatName)
#: Control tokens only a Mistral v3 (or later) tokenizer has: its tool calls are written with them.
_MISTRAL_TOKENS = {"[AVAILABLE_TOOLS]", "[TOOL_CALLS]", "[TOOL_RESULTS]"}


def get_format(name: str) -> ChatFormat:
    """The format called `name` ('chatml' or 'mistral'); `detect_format` says which one a model uses."""
    if name == "mistral":
        from andini.formats.mistral import MistralV3Format

        return MistralV3Format()
    if name == "chatml":
        from andini.formats.chatml import ChatMLToolsFormat

        return ChatMLToolsFormat()
    from andini.errors import InputError

    raise InputError(f"unknown chat format {name!r}", field="format",
                     hint=f"use one of: {', '.join(FORMAT_NAMES)} (detect_format(model) reads a checkpoint's)")


def detect_format(model: str | Path | None = None) -> FormatName:
    """The chat format a checkpoint was made for, read from its files, never from its name.

    The tokenizer decides first, because the format is text in its vocabulary: Mistral v3 control
    tokens ([AVAILABLE_TOOLS], [TOOL_CALLS]; or mistral-common's `tokenizer.model.v3`) mean the v3
    format, `<|im_start|>` means ChatML (a Mistral-architecture fine-tune with a ChatML tokenizer is
    ChatML). Without either, config.json's model_type / architectures: Mistral -> v3, else ChatML.
    `model` is a local folder (save_pretrained layout), or None / the embedded default (SmolLM2, ChatML).
    """
    from andini.models import DEFAULT_MODEL

    if model is None or str(model) == DEFAULT_MODEL:
        return "chatml"
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        from andini.errors import AndiniError

        raise AndiniError(f"No local model at {path} (no config.json): its chat format cannot be read.",
                          hint="give a folder saved with save_pretrained, or name the format "
                               "(model.format: chatml | mistral); nothing is downloaded")
    tokens = _added_tokens(path)
    if (path / "tokenizer.model.v3").is_file() or _MISTRAL_TOKENS <= tokens:
        return "mistral"
    if "<|im_start|>" in tokens:
        return "chatml"
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    kinds = [str(config.get("model_type") or ""), *map(str, config.get("architectures") or [])]
    return "mistral" if any(k.lower().startswith(("mistral", "mixtral")) for k in kinds) else "chatml"


def _added_tokens(path: Path) -> set[str]:
    """The special/added tokens a saved HF tokenizer declares (tokenizer.json, tokenizer_config.json)."""
    tokens: set[str] = set()
    if (path / "tokenizer.json").is_file():
        data = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
        tokens |= {t.get("content", "") for t in data.get("added_tokens") or []}
    if (path / "tokenizer_config.json").is_file():
        data = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        tokens |= {t.get("content", "") for t in (data.get("added_tokens_decoder") or {}).values()}
    return tokens


def prompt_text(fmt: ChatFormat, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
    """The full inference prompt, ready for the assistant to continue."""
    return "".join(s.text for s in fmt.render(messages, tools, add_generation_prompt=True))
