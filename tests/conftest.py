"""Shared fixtures. Every test runs with ANDINI_HOME in a temp dir, except that converted model
weights are shared through one session-wide cache so the default model is converted once per run."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from andini.settings import get_settings

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ANDINI_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A session-wide ANDINI_HOME/models, so the GGUF -> safetensors conversion happens once."""
    return tmp_path_factory.mktemp("models-cache")


@pytest.fixture(autouse=True)
def andini_home(tmp_path, monkeypatch, model_cache) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache)
    for key in list(os.environ):
        if key.startswith("ANDINI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ANDINI_HOME", str(home))
    get_settings.cache_clear()
    yield home
    from agent import storage

    storage.close_all()  # the next test has another ANDINI_HOME
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def mistral_shaped(tmp_path_factory) -> Path:
    """A tiny random Mistral-architecture model with the real Mistral v3 tokenizer (mistral-common's copy,
    converted to an HF tokenizer), saved under a name that does not say "mistral": only its files can
    tell which chat format it uses."""
    import torch
    from transformers import LlamaTokenizer, MistralConfig, MistralForCausalLM

    from finetune.render import mistral_v3_file

    path = tmp_path_factory.mktemp("checkpoints") / "m7b"
    spm = tmp_path_factory.mktemp("spm")
    shutil.copy(mistral_v3_file(), spm / "tokenizer.model")
    LlamaTokenizer.from_pretrained(spm).save_pretrained(path)
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=32768, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16)
    MistralForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip that says why."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set ANDINI_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def model_server(free_port, monkeypatch):
    """A TGI/OpenAI-wire test server that both remote backends' settings point at."""
    from tests.agent_support import FakeServer

    with FakeServer(free_port) as srv:
        monkeypatch.setenv("ANDINI_TGI_URL", srv.url)
        monkeypatch.setenv("ANDINI_OPENAI_URL", srv.url + "/v1")
        get_settings.cache_clear()
        yield srv
    assert not srv.malformed, f"requests TGI could not deserialize: {srv.malformed}"


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.skip("Debian chromium is not installed (make test installs it as root)")
    return path
