"""`TGIChatModel`: Text Generation Inference's Messages API as a LangChain chat model.

Built directly on `huggingface_hub.InferenceClient` (the TGI client Hugging Face maintains; the old
`text-generation` package pins huggingface-hub<1). `ChatHuggingFace` was tried: its `bind_tools` refuses
`tool_choice` with more than one tool, which `tool_choice="required"` for plans needs.

The request's `model` field names the served model or a LoRA adapter TGI was started with
(`--lora-adapters`). A 503 (model still loading) is retried until `request_timeout`; any other failure
is an AndiniError naming the URL and its real cause (`andini.http_errors`). HF_HUB_OFFLINE must stay
unset: it blocks localhost too, and that is then the cause named.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from agent.messages import new_call_id, openai_arguments
from andini.errors import AndiniError
from andini.http_errors import server_error


class TGIChatModel(BaseChatModel):
    """A TGI server's `/v1/chat/completions` with tools, tool_choice and response_format."""

    base_url: str = Field(description="TGI base URL, e.g. http://127.0.0.1:8080.")
    model_id: str = Field("tgi", description="Served model id, or the LoRA adapter id to use.")
    max_tokens: int = Field(512, ge=1, description="Generation limit per call.")
    temperature: float = Field(0.0, ge=0.0)
    timeout: float = Field(120.0, gt=0, description="Seconds to wait, 503 retries included.")
    response_format: dict[str, Any] | None = Field(
        None, description="TGI grammar, e.g. {'type': 'json_object', 'value': <JSON Schema>}.")

    @property
    def _llm_type(self) -> str:
        return "andini-tgi"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        from agent.bounds import served_tools

        # TGI compiles its grammar from these schemas: bounded, every call closes within max_tokens
        formatted = served_tools(tools, self.max_tokens, tool_choice)
        if tool_choice == "any":
            tool_choice = "required"
        elif isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
            tool_choice = {"type": "function", "function": {"name": tool_choice}}
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _client(self):
        from huggingface_hub import InferenceClient

        return InferenceClient(base_url=self.base_url.rstrip("/") + "/v1", timeout=self.timeout)

    def _request(self, client: Any, messages: list[BaseMessage], stop: list[str] | None, stream: bool,
                 **kwargs: Any) -> Any:
        from langchain_core.messages import convert_to_openai_messages

        params: dict[str, Any] = {
            "messages": convert_to_openai_messages(messages), "model": self.model_id,
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": self.temperature or None, "stop": stop, "stream": stream,
            "response_format": kwargs.get("response_format", self.response_format),
        }
        if kwargs.get("tools"):
            params["tools"] = kwargs["tools"]
            params["tool_choice"] = kwargs.get("tool_choice") or "auto"
        return self._with_retries(lambda: client.chat_completion(**params))

    def _with_retries(self, call):
        """Retry while TGI answers 503 (loading or overloaded); translate errors into AndiniError."""
        import httpx
        from huggingface_hub.errors import HfHubHTTPError

        deadline, delay = time.monotonic() + self.timeout, 0.5
        while True:
            try:
                return call()
            except HfHubHTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status == 503 and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                raise self._error(exc) from exc
            except (httpx.HTTPError, OSError) as exc:  # OfflineModeIsEnabled is a ConnectionError
                raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> AndiniError:
        return tgi_error(self.base_url, exc, self.timeout)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        out = self._request(self._client(), messages, stop, stream=False, **kwargs)
        msg = out.choices[0].message
        calls, invalid = [], []
        for call in msg.tool_calls or []:
            try:
                args = openai_arguments(call.function.arguments)
                calls.append({"name": call.function.name, "args": args, "id": call.id or new_call_id(),
                              "type": "tool_call"})
            except ValueError as exc:
                invalid.append({"name": call.function.name, "args": str(call.function.arguments),
                                "id": call.id or new_call_id(), "error": str(exc), "type": "invalid_tool_call"})
        usage = getattr(out, "usage", None)
        message = AIMessage(msg.content or "", tool_calls=calls, invalid_tool_calls=invalid,
                            response_metadata={"model_name": out.model, "finish_reason": out.choices[0].finish_reason})
        if usage:
            message.usage_metadata = {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
                                      "total_tokens": usage.total_tokens}
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        import httpx

        client = self._client()  # held while streaming: the stream closes with its client
        try:
            for chunk in self._request(client, messages, stop, stream=True, **kwargs):
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                tool_chunks = [{"name": c.function.name or None, "args": _arg_text(c.function.arguments),
                                "id": c.id or None, "index": c.index or 0, "type": "tool_call_chunk"}
                               for c in (delta.tool_calls or [])]
                text = delta.content or ""
                gen = ChatGenerationChunk(message=AIMessageChunk(content=text, tool_call_chunks=tool_chunks))
                if text and run_manager is not None:
                    run_manager.on_llm_new_token(text, chunk=gen)
                yield gen
        except AndiniError:
            raise
        except (httpx.HTTPError, OSError) as exc:  # the stream broke off, or never started
            raise self._error(exc) from exc


def _arg_text(raw: Any) -> str:
    import json

    return raw if isinstance(raw, str) else json.dumps(raw) if raw is not None else ""


#: What to do about a status TGI answered with.
STATUS_HINTS = {
    503: "the server is still loading the model or overloaded: wait, or raise ANDINI_REQUEST_TIMEOUT",
    422: "the server rejected the request (check the model id, adapter name and tool schemas)",
    404: "check ANDINI_TGI_URL and that the adapter was passed to TGI with --lora-adapters",
    401: "the server wants a token: TGI behind a gateway needs its key",
}


def tgi_error(url: str, exc: BaseException, timeout: float | None = None) -> AndiniError:
    """A failed TGI request, with its real cause (see andini.http_errors)."""
    return server_error("TGI", url, "ANDINI_TGI_URL", exc, status_hints=STATUS_HINTS, timeout=timeout)

