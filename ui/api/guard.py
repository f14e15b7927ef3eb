"""What stands in front of every API route: a rate limit, the bearer token, and a body size limit.

Each is a plain ASGI middleware, so it also covers streaming responses and answers before FastAPI reads
or parses a body. Order (outermost first): rate limit, so token guessing is throttled too; token, so an
unauthenticated caller never gets a body buffered; size. Rate limiting uses the maintained `limits`
library (moving window, in memory: one server process). The size limit is ours rather than FastAPI's
`max_body_size`, whose 413 for a declared Content-Length is plain text that no handler can shape.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may call: liveness, and the API's own description (it holds no data).
PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


async def send_problem(send: Send, status: int, detail: str, hint: str | None = None,
                       headers: dict[str, str] | None = None) -> None:
    """A JSON error in the API's one error shape (`Problem`)."""
    body = json.dumps({"detail": detail, "hint": hint}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RateLimit:
    """429 once a client address has spent its allowance (`ANDINI_API_RATE_LIMIT`); health is exempt."""

    def __init__(self, app: ASGIApp, limit: str):
        from limits import parse, storage, strategies

        self.app, self.limit_text = app, limit
        self.item = parse(limit)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        if not self.limiter.hit(self.item, client):
            reset = self.limiter.get_window_stats(self.item, client).reset_time
            wait = max(1, int(reset - time.time() + 0.999))
            return await send_problem(
                send, 429, f"Too many requests: the limit is {self.limit_text} per client address.",
                hint=f"retry after {wait} s, or raise ANDINI_API_RATE_LIMIT on the server",
                headers={"Retry-After": str(wait)})
        await self.app(scope, receive, send)


class BearerToken:
    """401 without `Authorization: Bearer <token>`, 403 with a wrong one; public paths pass."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        scheme, _, credentials = (_header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return await send_problem(send, 401, "Missing bearer token.",
                                      hint="send the header 'Authorization: Bearer <ANDINI_API_TOKEN>'",
                                      headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(credentials.strip().encode(), self.token):
            return await send_problem(send, 403, "Wrong bearer token.",
                                      hint="use the token the server was started with (ANDINI_API_TOKEN)")
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a body over `ANDINI_API_MAX_BODY_BYTES`, declared or streamed; the body is then replayed."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def _too_large(self, send: Send, size: str) -> None:
        await send_problem(send, 413, f"Request body is {size} bytes; the limit is {self.max_bytes}.",
                           hint="send fewer or smaller documents per request, or raise ANDINI_API_MAX_BODY_BYTES")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send, declared)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._too_large(send, f"more than {self.max_bytes}")
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # later calls wait for the disconnect, which SSE watches for

        await self.app(scope, replay, send)


def install(app: Any, *, token: str, rate_limit: str, max_body_bytes: int) -> None:
    """Put the three guards in front of a FastAPI/Starlette app; the last added runs first."""
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(BearerToken, token=token)
    app.add_middleware(RateLimit, limit=rate_limit)


def document_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the bearer scheme in the OpenAPI document: every operation needs it except public paths."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer", "description": "ANDINI_API_TOKEN"}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            if path in PUBLIC_PATHS:
                operation["security"] = []
                continue
            operation["security"] = [{"bearer": []}]
            operation.setdefault("responses", {}).update({
                "401": {"description": "Missing bearer token", **_problem_ref()},
                "403": {"description": "Wrong bearer token", **_problem_ref()},
                "413": {"description": "Request body too large", **_problem_ref()},
                "429": {"description": "Rate limit reached", **_problem_ref()},
            })
    return schema


def _problem_ref() -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
