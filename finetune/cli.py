"""`andini` subcommands of finetune/ (filled in by its issue)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands; handlers import heavy modules lazily."""
