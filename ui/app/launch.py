"""`andini ui`: run the Streamlit app (ui/app/main.py) on the embedded default.

Streamlit replaces this process (`python -m streamlit run ...`, same interpreter), headless, without usage
statistics, on ANDINI_UI_PORT unless --port says otherwise. The app itself indexes the project docs on
first start and loads the model lazily, so the page answers at once. Before that it says which adapter
the local model uses, or, on a fresh clone, that tool calls need one and the command that trains it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from andini.errors import AndiniError

APP = Path(__file__).resolve().parent / "main.py"


def streamlit_command(port: int, host: str, no_ingest: bool = False) -> list[str]:
    """The exact command line `andini ui` runs."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP),
           "--server.headless", "true", "--server.port", str(port), "--server.address", host,
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           "--global.developmentMode", "false", "--client.toolbarMode", "viewer"]
    return cmd + (["--", "--no-ingest"] if no_ingest else [])


def check_port_free(host: str, port: int) -> None:
    """Fail before Streamlit starts, with a fix, when something already listens on the port."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Streamlit's server does
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise AndiniError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
                              hint="stop what uses the port, or pick another with --port N "
                                   "(or ANDINI_UI_PORT)") from exc


def adapter_note() -> str | None:
    """What the person should know about the adapter the local model starts with: which one answers, or
    that tool calls need one and the command that trains it. None for a server backend."""
    from agent.backends import get_backend, served_adapter
    from andini.adapters import train_hint
    from andini.settings import get_settings

    settings = get_settings()
    if not get_backend(None, settings).in_process:
        return None
    choice = served_adapter(settings)
    return train_hint(choice) or f"andini ui: {choice.describe()}, {choice.adapter}"


def main(args: argparse.Namespace) -> int:
    from andini.settings import get_settings

    port = args.port or get_settings().ui_port
    host = getattr(args, "host", None) or "127.0.0.1"
    check_port_free(host, port)
    cmd = streamlit_command(port, host, getattr(args, "no_ingest", False))
    print(f"andini ui: http://{host}:{port}  (Ctrl+C to stop)", flush=True)
    note = adapter_note()
    if note:
        print(note, flush=True)
    # exec, not a child process: signals (Ctrl+C, a supervisor's SIGTERM) reach Streamlit directly.
    os.execv(sys.executable, cmd)
    return 0  # not reached
