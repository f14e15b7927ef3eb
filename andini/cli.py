"""The `andini` console command: parses arguments, calls one library function, prints.

Each package contributes its subcommands through a light `cli` module (argparse only; heavy imports
happen inside the handlers), so `andini --help` answers fast. This file is the composition root and
the one place that turns an AndiniError into a short message and an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from andini import __version__
from andini.errors import AndiniError

# Order here is the order in `andini --help`.
COMMAND_MODULES = ("ui.cli", "retrieval.cli", "agent.cli", "agent.structured_cli", "finetune.cli", "eval.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="andini",
        description="Turn intent into validated tool calls and JSON plans, grounded in your documents.",
    )
    parser.add_argument("--version", action="version", version=f"andini {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def print_json(obj: Any) -> None:
    """`--json` output: exactly one JSON object on stdout."""
    print(json.dumps(obj, ensure_ascii=False, default=str))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AndiniError as exc:
        from andini.settings import SettingsError, get_settings

        if not isinstance(exc, SettingsError) and get_settings().debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
