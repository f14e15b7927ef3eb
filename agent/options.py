"""The agent's options: one typed model, so `Agent(serch_first=True)` is an error that names the option
instead of a setting silently ignored (STYLE 3: options are a pydantic model that forbids unknown keys)."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from andini.errors import AndiniError
from andini.settings import BackendName


class AgentOptions(BaseModel):
    """What one `Agent` may change from the settings; unset (None) means the settings' value."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    backend: BackendName | None = Field(None, description="Model backend (agent.backends.BACKENDS); unset: settings.")
    model: str | None = Field(None, description="Local model folder or served model id.")
    adapter: str | None = Field(None, description="LoRA adapter: a registered name or folder (local), the "
                                "adapter id (servers), or 'none'; unset: the settings' (andini.adapters).")
    max_new_tokens: int | None = Field(None, ge=1, description="Generation limit per model call.")
    tools: list[Any] = Field(default_factory=list, description="Extra LangChain tools or documented functions.")
    collection: str | None = Field(None, description="Chroma collection the search tool reads.")
    confirm: bool | None = Field(None, description="Ask before tools with side effects run.")
    max_model_calls: int = Field(6, ge=1, description="Model calls per turn before the turn ends.")
    max_tool_calls: int = Field(8, ge=1, description="Tool calls per turn; later calls are refused.")
    validation_attempts: int = Field(3, ge=1, description="Tries the model gets to make its calls validate.")
    first_tool_choice: str | None = Field(
        None, description="'required' or a tool name: the first model call of a turn must call a tool.")
    search_first: bool | None = Field(
        None, description="Search the person's words, then answer from the passages (guards.SearchFirst).")
    chat_model: Any = Field(None, description="A ready LangChain chat model (e.g. for plumbing tests).")

    @classmethod
    def parse(cls, overrides: dict[str, Any]) -> AgentOptions:
        """The options, or an AndiniError naming the first one at fault."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = ".".join(str(p) for p in error["loc"])
            if error["type"] == "extra_forbidden":
                close = difflib.get_close_matches(name, cls.model_fields, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(cls.model_fields)}"
                raise AndiniError(f"Unknown agent option '{name}'.", hint=hint) from None
            raise AndiniError(f"Agent option '{name}': {error['msg']} (got {error.get('input')!r}).",
                              hint="see agent.options.AgentOptions") from None
