"""Generate docs/cli.md (every command's --help) and docs/settings.md (every setting) from the code.

Run `python scripts/gen_docs.py` after changing a command or a setting; tests/test_docs.py fails
when the committed files differ from what this prints, so the docs cannot drift.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _walk(parser: argparse.ArgumentParser, prefix: str):
    yield prefix, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{prefix} {name}")


def cli_markdown() -> str:
    from andini.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; fix it so output is stable
    parts = ["# Command reference\n", "Generated from `--help` by `scripts/gen_docs.py`; do not edit.\n"]
    for name, text in _walk(build_parser(), "andini"):
        parts.append(f"## `{name}`\n\n```\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def settings_markdown() -> str:
    from andini.settings import Settings

    rows = ["# Settings\n",
            "Generated from `andini/settings.py` by `scripts/gen_docs.py`; do not edit.\n",
            "Each setting is an environment variable, or a key of the TOML file `$ANDINI_HOME/config.toml`",
            "(another file with `ANDINI_CONFIG`). The environment wins over the file.\n",
            "| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "platform user data folder" if name == "home" else field.default
        rows.append(f"| `ANDINI_{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(rows) + "\n"


def generated() -> dict[Path, str]:
    return {DOCS / "cli.md": cli_markdown(), DOCS / "settings.md": settings_markdown()}


if __name__ == "__main__":
    for path, text in generated().items():
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
