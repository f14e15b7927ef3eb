"""Bad settings fail at start-up with a message that names the environment variable (issue 12, part 4),
instead of a traceback or a later, misleading "nothing answers at ..."; secrets are named, never shown."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from andini.settings import SettingsError, get_settings
from tests.conftest import REPO


@pytest.mark.parametrize("name,value,says", [
    ("ANDINI_SEARCH_K", "abc", "valid integer"),
    ("ANDINI_CHROMA_URL", "http://:8000", "with a host"),
    ("ANDINI_CHROMA_URL", "chroma:8000", "http(s) URL"),
    ("ANDINI_TGI_URL", "not-a-url", "http(s) URL"),
    ("ANDINI_OPENAI_URL", "http://127.0.0.1:99999/v1", "bad port"),
    ("ANDINI_BACKEND", "tgl", "'local', 'tgi' or 'openai'"),
])
def test_a_bad_setting_names_its_variable(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with pytest.raises(SettingsError) as err:
        get_settings()
    text = str(err.value)
    assert f"{name}={value!r}" in text and says in text, text
    assert "docs/settings.md" in text


def test_a_bad_token_is_named_but_never_shown(monkeypatch):
    secret = "s3cret with-a-space"
    monkeypatch.setenv("ANDINI_API_TOKEN", secret)
    get_settings.cache_clear()
    with pytest.raises(SettingsError) as err:
        get_settings()
    text = str(err.value)
    assert "ANDINI_API_TOKEN" in text and "Authorization header" in text
    assert "s3cret" not in text


def test_good_urls_and_an_empty_chroma_url_pass(monkeypatch):
    monkeypatch.setenv("ANDINI_CHROMA_URL", "")  # empty means the embedded store, as unset does
    monkeypatch.setenv("ANDINI_TGI_URL", "https://tgi.internal:8443")
    monkeypatch.setenv("ANDINI_OPENAI_URL", "http://[::1]:8000/v1")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.chroma_url == "" and settings.tgi_url.endswith(":8443")


@pytest.mark.parametrize("command", [["search", "hello"], ["serve"]])
def test_the_cli_prints_the_setting_and_exits_1_without_a_traceback(andini_home, command):
    """Even with ANDINI_DEBUG on: the debug switch itself is read from the settings that failed."""
    env = {**os.environ, "ANDINI_TGI_URL": "localhost:8080", "ANDINI_DEBUG": "1", "ANDINI_API_TOKEN": "t",
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "andini.cli", *command], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: Bad setting: ANDINI_TGI_URL='localhost:8080'"), done.stderr
    assert "Traceback" not in done.stderr
