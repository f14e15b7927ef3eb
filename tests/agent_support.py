"""Helpers for the agent tests: a scripted chat model (plumbing only) and a real HTTP server that speaks
TGI's documented Messages API wire format (contract tests: TGI itself cannot run on these machines).

TGI wire format followed here (text-generation-inference docs, "Messages API" and "Guidance"):
- POST /v1/chat/completions, OpenAI-shaped: `choices[0].message` with `content` and `tool_calls`
  `[{"id", "type": "function", "function": {"name", "arguments"}}]`; TGI >= 3 sends `arguments` as a JSON
  string, TGI 2.x sent an object (both are served here).
- `stream: true`: Server-Sent Events, `data: {chunk}` lines of `chat.completion.chunk` objects whose
  `choices[0].delta` carries `content` or `tool_calls` pieces, ending with `data: [DONE]`.
- errors: JSON `{"error": "...", "error_type": "..."}` with 422 (validation) or 503 (model loading /
  overloaded); GET /health answers 200 once the model is ready; GET /info describes the model.
- request bodies: the `ChatRequest` schema of TGI's docs/openapi.json, checked on every request.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult


class ScriptedChatModel(BaseChatModel):
    """Answers with the next scripted AIMessage. For agent plumbing tests, never as evidence of quality."""

    script: list[Any]
    calls: list[Any] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):
        return self.bind(tools=tools, tool_choice=tool_choice, **kwargs)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls.append({"messages": list(messages), **kwargs})
        step = self.script.pop(0) if self.script else AIMessage("done")
        message = step(messages) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=message)])


def call(name: str, call_id: str = "c1", **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


# ---------------------------------------------------------------- the TGI / OpenAI-compatible server

_WIRE = Path(__file__).parent / "wire" / "tgi_chat_request.schema.json"


@functools.cache
def _wire_validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(_WIRE.read_text()))


def wire_problem(body: Any) -> str | None:
    """Why TGI would refuse this /v1/chat/completions body (the JSON path and the reason), or None."""
    errors = sorted(_wire_validator().iter_errors(body), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    return "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:200]}" for e in errors[:3])


class FakeServer:
    """A real uvicorn server on 127.0.0.1 that answers from a queue of scripted replies.

    Each reply is a dict: {"text": str} | {"calls": [(name, args)], "args_as_object": bool}
    | {"status": 503|422|500, "error": str} | {"delay": seconds, ...} (answers that late). Requests are
    recorded in `.requests`. Each request body is checked against TGI's own request schema
    (tests/wire/tgi_chat_request.schema.json, from its OpenAPI document and serde aliases); one that
    TGI could not deserialize gets TGI's 422 and is kept in `.malformed`, so a client that drifts
    from the wire fails here as it would against the real server.
    """

    def __init__(self, port: int, model_id: str = "HuggingFaceTB/SmolLM2-135M-Instruct"):
        self.port, self.model_id = port, model_id
        self.replies: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.malformed: list[str] = []
        self.url = f"http://127.0.0.1:{port}"
        self._server = None

    # -- protocol
    def _completion(self, reply: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.get("text")}
        if reply.get("calls"):
            message["tool_calls"] = [
                {"id": str(i), "type": "function",
                 "function": {"name": name, "description": None,
                              "arguments": args if reply.get("args_as_object") else json.dumps(args)}}
                for i, (name, args) in enumerate(reply["calls"])]
        return {"object": "chat.completion", "id": "", "created": int(time.time()), "model": self.model_id,
                "system_fingerprint": "3.3.4-native",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if reply.get("calls") else "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}

    def _chunks(self, reply: dict[str, Any]) -> Iterator[dict[str, Any]]:
        base = {"object": "chat.completion.chunk", "id": "", "created": int(time.time()),
                "model": self.model_id, "system_fingerprint": "3.3.4-native"}
        for word in (reply.get("text") or "").split(" ") if reply.get("text") else []:
            yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": word + " "},
                                        "logprobs": None, "finish_reason": None}]}
        for i, (name, args) in enumerate(reply.get("calls") or []):
            text = json.dumps(args)
            yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
                {"index": i, "id": str(i), "type": "function", "function": {"name": name, "arguments": ""}}]},
                "logprobs": None, "finish_reason": None}]}
            for piece in (text[:5], text[5:]):
                yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
                    {"index": i, "function": {"arguments": piece}}]}, "logprobs": None, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                    "finish_reason": "tool_calls" if reply.get("calls") else "stop"}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}

    def app(self):
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
        from starlette.routing import Route

        async def chat(request):
            body = await request.json()
            self.requests.append(body)
            # TGI's schema for TGI's client (huggingface_hub); the OpenAI client's json_schema reply
            # format is vLLM's wire, which TGI spells differently, so its requests are not checked here.
            problem = None if request.headers.get("user-agent", "").startswith("OpenAI") else wire_problem(body)
            if problem:  # axum's Json extractor: 422, plain text
                self.malformed.append(problem)
                return PlainTextResponse("Failed to deserialize the JSON body into the target type: " + problem,
                                         status_code=422)
            reply = self.replies.pop(0) if self.replies else {"text": "ok"}
            if reply.get("delay"):
                await asyncio.sleep(reply["delay"])
            if "status" in reply:
                return JSONResponse({"error": reply["error"], "error_type": reply.get("error_type", "generation")},
                                    status_code=reply["status"])
            if body.get("stream"):
                def sse():
                    for chunk in self._chunks(reply):
                        yield f"data: {json.dumps(chunk)}\n\n"
                    yield "data: [DONE]\n\n"
                return StreamingResponse(sse(), media_type="text/event-stream")
            return JSONResponse(self._completion(reply))

        async def health(request):
            return JSONResponse({})

        async def models(request):
            return JSONResponse({"object": "list", "data": [{"id": self.model_id, "object": "model",
                                                             "owned_by": "tgi"}]})

        routes = [Route("/v1/chat/completions", chat, methods=["POST"]), Route("/health", health),
                  Route("/v1/models", models)]
        return Starlette(routes=routes)

    def __enter__(self) -> FakeServer:
        import uvicorn

        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    """`python tests/agent_support.py --port N`: the TGI-wire server as its own process (the compose
    test's stand-in for TGI, which needs a GPU). Every chat request gets `--reply` as the answer."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reply", default="Here is what the documents say.", help="the answer to every turn")
    args = parser.parse_args(argv)
    import uvicorn

    server = FakeServer(args.port)
    server.replies = _Forever({"text": args.reply})  # type: ignore[assignment]
    uvicorn.run(server.app(), host=args.host, port=args.port, log_level="info")


class _Forever(list):
    """A reply queue that never runs dry: every pop gives the same reply."""

    def __init__(self, reply: dict[str, Any]):
        super().__init__([reply])

    def pop(self, index: int = -1) -> Any:
        return dict(self[0])


if __name__ == "__main__":
    main()
