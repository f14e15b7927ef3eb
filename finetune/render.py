"""One function owns the training text and its loss mask: `render_example`.

It renders an Example through the chat format in `andini.formats` (the same code that renders prompts
at inference, so train and serve see the same text), tokenizes segment by segment, and labels only the
segments the format marks as the assistant's (`Segment.train`): every assistant turn, tool calls and
final answers alike, with its end-of-turn token. Everything else is -100. Collators only pad.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from andini.formats import ChatFormat, Segment, get_format
from andini.schema import Example

IGNORE = -100


def example_segments(example: Example, fmt: ChatFormat) -> list[Segment]:
    """The example as the format's segments: context, then the assistant's target turn."""
    return fmt.render([*example.messages, example.target_message()], example.tools)


def segment_encoder(tokenizer: Any, fmt: ChatFormat) -> Callable[[str], list[int]]:
    """text -> token ids for one segment, the way this family's reference tokenizer encodes it."""
    if fmt.control_tokens:
        return _piecewise_encoder(tokenizer, fmt.control_tokens)
    return lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]


def mistral_common_raw(tokenizer: Any) -> Any | None:
    """The raw tokenizer inside a mistral-common `MistralTokenizer` (ids, special tokens), or None for
    any other tokenizer: the one place that tells the two kinds apart."""
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    return tokenizer.instruct_tokenizer.tokenizer if isinstance(tokenizer, MistralTokenizer) else None


def _piecewise_encoder(tokenizer: Any, control_tokens: Sequence[str]) -> Callable[[str], list[int]]:
    """Split at control tokens; encode each piece alone (SentencePiece adds the '▁' the text shows
    as one leading space), as mistral-common does. Works with mistral-common or an HF tokenizer."""
    control_re = re.compile("(" + "|".join(re.escape(t) for t in control_tokens) + ")")

    raw = mistral_common_raw(tokenizer)
    if raw is not None:
        def piece(text: str) -> list[int]:
            return raw.encode(text, bos=False, eos=False)

        def control(token: str) -> int:
            return raw.get_special_token(token) if token not in ("<s>", "</s>") else (
                raw.bos_id if token == "<s>" else raw.eos_id)
    else:
        def piece(text: str) -> list[int]:
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        def control(token: str) -> int:
            return tokenizer.convert_tokens_to_ids(token)

    def encode(text: str) -> list[int]:
        ids: list[int] = []
        for part in control_re.split(text):
            if not part:
                continue
            if control_re.fullmatch(part):
                ids.append(control(part))
            else:
                ids.extend(piece(part[1:] if part.startswith(" ") else part))
        return ids

    return encode


def mistral_v3_file() -> Any:
    """The v3 SentencePiece model mistral-common ships: the vocabulary of Mistral-7B-Instruct-v0.3
    (the Hub's `tokenizer.model.v3` and `tokenizer.model` are this file)."""
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    return MistralTokenizer._data_path() / "mistral_instruct_tokenizer_240323.model.v3"


def mistral_tokenizer(model_dir: str | None = None) -> Any:
    """mistral-common's v3 tokenizer: the model folder's `tokenizer.model.v3` if it has one, else the
    copy mistral-common ships (`mistral_v3_file`), in fine-tuning mode."""
    from pathlib import Path

    from mistral_common.protocol.instruct.validator import ValidationMode
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    local = Path(model_dir or "", "tokenizer.model.v3")
    path = local if model_dir and local.exists() else mistral_v3_file()
    return MistralTokenizer.from_file(str(path), mode=ValidationMode.finetuning)


def render_example(example: Example, tokenizer: Any, fmt: ChatFormat | str) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for one example; labels are -100 outside the assistant's tokens."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    encode = segment_encoder(tokenizer, fmt)
    input_ids: list[int] = []
    labels: list[int] = []
    for segment in example_segments(example, fmt):
        ids = encode(segment.text)
        input_ids.extend(ids)
        labels.extend(ids if segment.train else [IGNORE] * len(ids))
    return input_ids, labels


def assistant_text(example: Example, fmt: ChatFormat | str) -> str:
    """The text of every assistant segment, joined: what the unmasked labels must decode to."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    return "".join(s.text for s in example_segments(example, fmt) if s.train)


def load_tokenizer(base: str, fmt_name: str) -> Any:
    """The tokenizer `render_example` needs for this base model and format."""
    if get_format(fmt_name).control_tokens:  # mistral-common's is the reference
        from pathlib import Path

        return mistral_tokenizer(base if Path(base).is_dir() else None)
    from transformers import AutoTokenizer

    from andini.models import model_dir

    return AutoTokenizer.from_pretrained(model_dir(base))
