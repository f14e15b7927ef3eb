"""Docs that cannot drift: the generated command and settings references match the code."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _gen():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["cli.md", "settings.md"])
def test_generated_docs_are_current(name, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    docs = _gen().generated()
    path = REPO / "docs" / name
    assert path.read_text() == docs[path], f"docs/{name} is stale: run python scripts/gen_docs.py"


def test_readme_opens_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert "make ui" in text and "make test" in text
    assert "make test" in (REPO / ".ci" / "run").read_text()
