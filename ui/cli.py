"""`andini ui` (the Streamlit app, the main job) and `andini serve` (the HTTP automation API)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="Start the chat UI on the embedded default (the main job).")
    p.add_argument("--port", type=int, default=None, help="Port (default: ANDINI_UI_PORT, 8501).")
    p.add_argument("--host", default="127.0.0.1", help="Address to bind.")
    p.add_argument("--no-ingest", action="store_true", help="Skip ingesting the bundled docs on first start.")
    p.set_defaults(func=_ui)

    p = sub.add_parser("serve", help="Start the HTTP automation API (OpenAPI at /docs).")
    p.add_argument("--port", type=int, default=None, help="Port (default: ANDINI_API_PORT, 8001).")
    p.add_argument("--host", default=None, help="Address to bind (default: ANDINI_API_HOST).")
    p.set_defaults(func=_serve)


def _ui(args: argparse.Namespace) -> int:
    from ui.app.launch import main

    return main(args)


def _serve(args: argparse.Namespace) -> int:
    from ui.api.server import main

    return main(args)
