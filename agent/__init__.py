"""The agent: model backends, tools and the LangChain agent loop, as a stream of events."""

from __future__ import annotations

from typing import Any


def health(settings: Any = None) -> dict[str, Any]:
    """Is the configured model backend reachable? See `agent.backends.health`."""
    from agent.backends import health as backend_health

    return backend_health(settings)
