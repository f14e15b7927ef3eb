"""Model backends: one factory for LangChain chat models (`local`, `tgi`, `openai`) and `complete()`,
a single model call with tools and no agent loop (what eval/ scores).

Each backend is a LangChain chat model with `bind_tools` and streaming; what differs is declared once in
`BACKENDS` (STYLE 3), not in `if backend == ...` chains elsewhere.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from andini.adapters import AdapterChoice, choose, explicit
from andini.errors import AndiniError
from andini.schema import Message, ToolCall, ToolSpec
from andini.settings import Settings, get_settings


class Completion(BaseModel):
    """One model call's output, parsed and checked against the offered tools."""

    text: str = Field(description="Raw output (local: the generated text; servers: content + calls as JSON).")
    content: str = Field("", description="The plain-text part of the answer.")
    calls: list[ToolCall] = Field(default_factory=list, description="Tool calls that parsed.")
    error: str | None = Field(None, description="Why the output did not parse or validate; None when fine.")
    latency_s: float = Field(0.0, description="Seconds for the whole call.")
    ttft_s: float = Field(0.0, description="Seconds to the first generated token.")
    new_tokens: int = Field(0, description="Generated tokens (servers: as reported, else chunks seen).")
    stopped_before_call: bool = Field(False, description="Local: the model began one more call than the tokens "
                                      "left could hold, so the output ended before it (raise max_new_tokens).")


@dataclass(frozen=True)
class Backend:
    """What a backend can do, and how to build its chat model. Code asks these attributes, never the name."""

    name: str
    #: How the UI names it.
    label: str
    build: Callable[[Settings, dict[str, Any]], Any]
    #: Tool calls are guaranteed valid by a grammar we control (else: by the server, or checked after).
    grammar: bool
    #: The model runs in this process: we render its prompt (so eval can record it), it is loaded before
    #: the first turn (the UI shows a spinner), and health reads its files, not a URL.
    in_process: bool = False
    #: Turns the HTTP API runs at once: an in-process model generates one at a time, a server batches.
    max_concurrent_turns: int = 8
    #: For a server backend: what to call it in messages, the settings field holding its URL, the path
    #: under that URL that answers a health probe, and hints for its HTTP status codes.
    server: str = ""
    url_field: str = ""
    health_path: str = ""
    status_hints: Callable[[], dict[int, str]] | None = None
    #: How a server is asked for a document valid against a JSON Schema: (schema, its name) -> the
    #: request's `response_format`. None where the model runs in process: our own grammar holds it.
    document_format: Callable[[Any, str], dict[str, Any]] | None = None

    def url(self, settings: Settings) -> str | None:
        return getattr(settings, self.url_field) if self.url_field else None

    @property
    def url_setting(self) -> str:
        """The environment variable that points at the server, e.g. ANDINI_TGI_URL."""
        return f"ANDINI_{self.url_field.upper()}" if self.url_field else ""

    def request_error(self, settings: Settings, exc: BaseException) -> AndiniError:
        """A failed request to this backend's server, naming the URL, the setting and the real cause."""
        from andini.http_errors import server_error

        hints = self.status_hints() if self.status_hints else None
        return server_error(self.server, self.url(settings) or "?", self.url_setting, exc,
                            status_hints=hints, timeout=settings.request_timeout)


def _build_local(s: Settings, o: dict[str, Any]) -> Any:
    from agent.chat_local import LocalChatModel

    model = o.get("model", s.model)
    adapter = choose(o.get("adapter", s.adapter), model, s.home).adapter
    return LocalChatModel(model_name=model, adapter=adapter,
                          constrained=o.get("constrained", True),
                          max_new_tokens=o.get("max_new_tokens") or s.max_new_tokens,
                          temperature=s.temperature)


def _build_tgi(s: Settings, o: dict[str, Any]) -> Any:
    from agent.chat_tgi import TGIChatModel

    # TGI routes the request to a LoRA adapter when `model` names one; else any id serves the base.
    model_id = explicit(o.get("adapter", s.adapter)) or o.get("model", s.model) or "tgi"
    return TGIChatModel(base_url=s.tgi_url, model_id=model_id, temperature=s.temperature,
                        max_tokens=o.get("max_new_tokens") or s.max_new_tokens, timeout=s.request_timeout)


def _openai_chat() -> type:
    """ChatOpenAI whose bind_tools sends bounded schemas (`agent.bounds.served_tools`)."""
    from langchain_openai import ChatOpenAI

    from agent.bounds import served_tools

    class BoundedChatOpenAI(ChatOpenAI):
        def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
            return super().bind_tools(served_tools(tools, self.max_tokens or 512, tool_choice),
                                      tool_choice=tool_choice, **kwargs)

    return BoundedChatOpenAI


def _build_openai(s: Settings, o: dict[str, Any]) -> Any:
    model = explicit(o.get("adapter", s.adapter)) or o.get("model", s.model) or _first_served_model(s)
    return _openai_chat()(base_url=s.openai_url, api_key=s.openai_api_key, model=model,
                      temperature=s.temperature, max_tokens=o.get("max_new_tokens") or s.max_new_tokens,
                      timeout=s.request_timeout, max_retries=1, stream_usage=True)


def _first_served_model(s: Settings) -> str:
    """vLLM, SGLang and llama.cpp list what they serve at /models; use the first when none is set."""
    import httpx

    url = s.openai_url.rstrip("/") + "/models"
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {s.openai_api_key}"}, timeout=10)
        response.raise_for_status()
        return response.json()["data"][0]["id"]
    except (httpx.HTTPError, OSError) as exc:
        raise BACKENDS["openai"].request_error(s, exc) from exc
    except (KeyError, IndexError, ValueError) as exc:
        raise AndiniError(f"{url} lists no served model.", hint="set ANDINI_MODEL to the served model id") from exc


def _tgi_document(schema: Any, name: str) -> dict[str, Any]:
    """TGI's grammar: the output is held to `schema` while it is generated."""
    return {"type": "json_object", "value": schema}


def _openai_document(schema: Any, name: str) -> dict[str, Any]:
    """OpenAI's structured output, which vLLM, SGLang and llama.cpp also take."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "document"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}


def _tgi_hints() -> dict[int, str]:
    from agent.chat_tgi import STATUS_HINTS

    return STATUS_HINTS


#: The one table of backends: CLI choices, UI settings, the API and eval read it (the settings' Literal
#: `andini.settings.BackendName` is checked against it by a test).
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("local", "Local (embedded)", _build_local, grammar=True, in_process=True, max_concurrent_turns=1),
    Backend("tgi", "TGI server", _build_tgi, grammar=False, server="TGI", url_field="tgi_url",
            health_path="/health", status_hints=_tgi_hints, document_format=_tgi_document),
    Backend("openai", "OpenAI-compatible server", _build_openai, grammar=False,
            server="OpenAI-compatible server", url_field="openai_url", health_path="/models",
            document_format=_openai_document),
)}


def get_backend(name: str | None, settings: Settings | None = None) -> Backend:
    name = name or (settings or get_settings()).backend
    if name not in BACKENDS:
        raise AndiniError(f"Unknown backend '{name}'.", hint=f"use one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def make_chat_model(settings: Settings | None = None, **overrides: Any) -> Any:
    """A LangChain chat model for the configured backend. Overrides: backend, model, adapter,
    constrained (local), max_new_tokens."""
    settings = settings or get_settings()
    backend = get_backend(overrides.pop("backend", None), settings)
    given = {k: v for k, v in overrides.items() if v is not None}
    return backend.build(settings, given)


def served_adapter(settings: Settings | None = None, backend: str | None = None, model: str | None = None,
                   adapter: str | None = None, auto: bool = True) -> AdapterChoice:
    """Which adapter answers with these overrides (None: the settings' value), by `andini.adapters.choose`.
    An in-process backend loads folders, so names and, with `auto`, an unset value resolve there; the
    agent (UI, run, chat, serve) uses auto, evaluation and `generate` only the adapter they are given."""
    settings = settings or get_settings()
    spec = get_backend(backend, settings)
    return choose(adapter if adapter is not None else settings.adapter, model or settings.model,
                  settings.home, local=spec.in_process, auto=auto)


def explain_error(exc: BaseException, settings: Settings | None = None, backend: str | None = None) -> AndiniError:
    """An AndiniError a person can act on, from whatever a backend raised."""
    if isinstance(exc, AndiniError):
        return exc
    settings = settings or get_settings()
    spec = get_backend(backend, settings)
    from andini.http_errors import failure

    if spec.server and failure(exc).kind != "other":  # a request to the model server failed
        return spec.request_error(settings, exc)
    name = type(exc).__name__
    where = f" ({spec.url(settings)})" if spec.url(settings) else ""
    return AndiniError(f"The {spec.name} backend{where} failed: {name}: {exc}",
                       hint="set ANDINI_DEBUG=1 for the traceback")


def complete(messages: list[Message], tools: list[ToolSpec], *, backend: str | None = None,
             model: str | None = None, adapter: str | None = None, constrained: bool = True,
             max_new_tokens: int | None = None, tool_choice: str | None = None) -> Completion:
    """One model call with these tools; calls are parsed and validated against their schemas."""
    settings = get_settings()
    spec = get_backend(backend, settings)
    limit = max_new_tokens or settings.max_new_tokens
    if spec.in_process:
        chosen = served_adapter(settings, spec.name, model, adapter, auto=False).adapter
        return _complete_local(messages, tools, model or settings.model, chosen, constrained, limit,
                               tool_choice, settings.temperature)
    chat = make_chat_model(settings, backend=spec.name, model=model, adapter=adapter, max_new_tokens=limit)
    try:
        return _complete_remote(chat, messages, tools, tool_choice)
    except Exception as exc:
        raise explain_error(exc, settings, spec.name) from exc


def _complete_local(messages: Sequence[Message], tools: list[ToolSpec], model: str | None,
                    adapter: str | None, constrained: bool, limit: int, tool_choice: str | None,
                    temperature: float) -> Completion:
    from agent.chat_local import pick_tools
    from agent.local import get_engine
    from andini.calls import calls_error

    engine = get_engine(model, adapter)
    offered, required = pick_tools(tools, tool_choice)
    gen = engine.generate(messages, offered, constrained=constrained, require_call=required,
                          max_new_tokens=limit, temperature=temperature)
    content: str = gen.text
    calls: list[ToolCall] = []
    error: str | None = None
    try:
        content, calls = engine.fmt.parse(gen.text)
        error = calls_error(calls, tools)
    except (ValueError, TypeError) as exc:
        error = f"output does not parse: {exc}"
    if not gen.finished and error:
        error = f"cut off at max_new_tokens={limit}: {error}"
    return Completion(text=gen.text, content=content, calls=calls, error=error, latency_s=gen.latency_s,
                      ttft_s=gen.ttft_s, new_tokens=gen.new_tokens, stopped_before_call=gen.stopped_before_call)


def _complete_remote(chat: Any, messages: Sequence[Message], tools: list[ToolSpec],
                     tool_choice: str | None) -> Completion:
    from agent.messages import to_langchain
    from andini.calls import calls_error

    runnable = chat.bind_tools([t.openai() for t in tools], tool_choice=tool_choice) if tools else chat
    start, ttft, merged, chunks = time.perf_counter(), 0.0, None, 0
    for chunk in runnable.stream(to_langchain(messages)):
        if not ttft and (chunk.content or chunk.tool_call_chunks):
            ttft = time.perf_counter() - start
        chunks += 1
        merged = chunk if merged is None else merged + chunk
    latency = time.perf_counter() - start
    if merged is None:
        return Completion(text="", error="the server sent no output", latency_s=latency)
    calls = [ToolCall(name=c["name"], arguments=c["args"]) for c in merged.tool_calls]
    bad = [f"{c.get('name')}: {c.get('error') or 'arguments are not JSON'}" for c in merged.invalid_tool_calls]
    error = "; ".join(bad) or calls_error(calls, tools)
    usage = merged.usage_metadata or {}
    content = merged.content if isinstance(merged.content, str) else str(merged.content)
    text = "\n".join([content] + [c.to_json() for c in calls]).strip()
    return Completion(text=text, content=content, calls=calls, error=error, latency_s=latency,
                      ttft_s=ttft, new_tokens=usage.get("output_tokens") or chunks)


def health(settings: Settings | None = None) -> dict[str, Any]:
    """Is the configured model backend usable? {ok, backend, url, detail}; never raises."""
    settings = settings or get_settings()
    spec = get_backend(None, settings)
    url = spec.url(settings)
    try:
        if spec.in_process or url is None:
            from andini.models import DEFAULT_MODEL, default_gguf, model_dir

            name = settings.model or DEFAULT_MODEL
            detail = str(default_gguf() if name == DEFAULT_MODEL else model_dir(name))
            return {"ok": True, "backend": spec.name, "url": None, "detail": f"model {name} from {detail}"}
        import httpx

        probe = url.rstrip("/") + spec.health_path
        response = httpx.get(probe, timeout=5, headers={"Authorization": f"Bearer {settings.openai_api_key}"})
        ok = response.status_code == 200
        return {"ok": ok, "backend": spec.name, "url": url, "detail": f"GET {probe}: {response.status_code}"}
    except Exception as exc:  # health reports, it does not raise
        return {"ok": False, "backend": spec.name, "url": url, "detail": str(explain_error(exc, settings, spec.name))}
