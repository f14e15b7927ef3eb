"""Why a request to a server failed, in words a person can act on.

The clients andini uses (huggingface_hub for TGI, langchain-openai/openai for OpenAI-compatible servers,
httpx, chromadb's HttpClient) each wrap the real cause in their own exception types. `failure()` walks
an exception's chain (`__cause__`, `__context__`) and names what happened: the server answered with a
status and a message; offline mode blocked the request before it left; the host name did not resolve;
nothing listens at the address (connection refused); no answer in time; TLS failed. `server_error()`
turns that into an `AndiniError` naming the URL and the setting that points at the server, so nobody
is told "no server answers" when one answered.

Only the standard library is imported here; client libraries are recognised by their attributes and
type names, so andini/ stays free of them (DESIGN: andini imports nothing of the others).
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

from andini.errors import AndiniError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_DNS_WORDS = ("name or service not known", "nodename nor servname", "temporary failure in name resolution",
              "no address associated with hostname", "getaddrinfo failed")
_REFUSED_WORDS = ("connection refused", "errno 111", "actively refused")


@dataclass(frozen=True)
class Failure:
    """What went wrong with one request. `kind`: status, offline, dns, refused, timeout, tls, reset,
    other. `status` and `message` are the server's own when it answered."""

    kind: str
    detail: str
    status: int | None = None
    message: str = ""


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it was raised from or during, outermost first, each once."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def failure(exc: BaseException) -> Failure:
    """The real cause of a failed request, whatever client raised it."""
    links = list(chain(exc))
    for link in links:  # the server answered: its status and message are the cause
        status = _status_of(link)
        if status is not None:
            message = server_message(link)
            return Failure("status", f"answered {status}: {message}" if message else f"answered {status}",
                           status, message)
    for link in links:
        if type(link).__name__ == "OfflineModeIsEnabled":
            return Failure("offline", f"not sent: {_offline_switch()} is set in this process's environment, "
                                      "and huggingface_hub then refuses every request, to localhost too")
    for link in links:
        if isinstance(link, socket.gaierror) or any(w in str(link).lower() for w in _DNS_WORDS):
            return Failure("dns", "the host name does not resolve")
    for link in links:
        if isinstance(link, ssl.SSLError) or "certificate verify failed" in str(link).lower():
            return Failure("tls", f"the TLS handshake failed: {link}")
    for link in links:
        if isinstance(link, ConnectionRefusedError) or any(w in str(link).lower() for w in _REFUSED_WORDS):
            return Failure("refused", "connection refused: nothing listens there")
    for link in links:
        if isinstance(link, TimeoutError) or "Timeout" in type(link).__name__ or "timed out" in str(link):
            return Failure("timeout", "no answer in time (timed out)")
    for link in links:
        if isinstance(link, ConnectionResetError | BrokenPipeError) or \
                type(link).__name__ in ("RemoteProtocolError", "ReadError") or \
                getattr(link, "errno", None) in (errno.ECONNRESET, errno.EPIPE):
            return Failure("reset", f"the connection broke off mid-request ({type(link).__name__}: {link})")
    root = links[-1]
    return Failure("other", f"{type(root).__name__}: {root}")


def server_error(what: str, url: str, setting: str, exc: BaseException, *,
                 status_hints: dict[int, str] | None = None, timeout: float | None = None) -> AndiniError:
    """An AndiniError for a failed request to `what` (e.g. "TGI") at `url`, which `setting` names."""
    found = failure(exc)
    host = urlparse(url).hostname or url
    if found.kind == "status":
        hint = (status_hints or {}).get(found.status or 0) or "see the server's log"
        return AndiniError(f"{what} at {url} {found.detail}", hint=hint)
    message = {
        "offline": f"The request to {what} at {url} was {found.detail}.",
        "dns": f"{what} at {url}: the host name {host!r} does not resolve.",
        "refused": f"Nothing answers at {url}: connection refused (no {what} server listens there).",
        "timeout": f"{what} at {url} did not answer within {timeout:g} s." if timeout else
                   f"{what} at {url} did not answer in time.",
    }.get(found.kind, f"The request to {what} at {url} failed: {found.detail}.")
    hint = {
        "offline": f"unset {_offline_switch()}: andini loads its local models from folders and needs no "
                   "offline switch",
        "dns": f"check the host in {setting}",
        "refused": f"start the {what} server, or point {setting} at the one that runs",
        "timeout": "the server is busy or the model is large: wait, or raise ANDINI_REQUEST_TIMEOUT",
        "tls": f"check the certificate of the server at {setting}, or use http:// on a trusted network",
    }.get(found.kind, f"check that {setting} points at a {what} server")
    return AndiniError(message, hint=hint)


def server_message(exc: BaseException) -> str:
    """The error text a server sent with its status (JSON `error`/`message`/`detail`, else the text)."""
    response = getattr(exc, "response", None)
    body = getattr(exc, "body", None)  # openai's APIStatusError keeps the parsed JSON here
    if response is not None:
        try:
            body = response.json()
        except Exception:  # not JSON: fall back to its text
            text = getattr(response, "text", "") or ""
            if text.strip():
                return text.strip()[:300]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            inner = inner.get("message") or inner
        text = inner if isinstance(inner, str) else body.get("message") or body.get("detail") or body
        return str(text)[:300]
    return str(getattr(exc, "message", "") or exc)[:300]


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) and status >= 400 else None


def _offline_switch() -> str:
    import os

    on = [name for name in OFFLINE_VARIABLES if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")]
    return " and ".join(on) or "HF_HUB_OFFLINE"
