"""The adapter registry under ANDINI_HOME: registering copies a real PEFT adapter, listing reads its
manifest, and the agent uses the newest one trained on the model it serves unless told otherwise."""

from __future__ import annotations

import json

import pytest

from andini.adapters import TRAIN_COMMAND, choose, list_adapters, register
from andini.errors import AndiniError
from tests.adapter_support import tiny_adapter

OTHER_BASE = "HuggingFaceTB/SmolLM2-360M-Instruct"


@pytest.fixture
def registered(tmp_path, andini_home):
    """Three registered adapters: two on the default model (older, newer) and the newest on another."""
    out = tmp_path / "out"
    out.mkdir()
    for name, base, when in (("older", "smollm2-135m-instruct", "2026-12-01T10:00:00Z"),
                             ("newer", "smollm2-135m-instruct", "2026-12-02T10:00:00Z"),
                             ("other-base", OTHER_BASE, "2026-12-03T10:00:00Z")):
        register(tiny_adapter(out / name, base, when), andini_home)
    return andini_home


def test_register_copies_the_adapter_and_lists_what_it_was_trained_on(tmp_path, andini_home):
    import shutil

    out = tiny_adapter(tmp_path / "run" / "smol-tools", train_examples=599)
    info = register(out, andini_home)
    assert info.path == andini_home / "adapters" / "smol-tools" and not info.path.is_symlink()
    assert {"adapter_config.json", "adapter_model.safetensors", "run_manifest.json"} <= \
        {p.name for p in info.path.iterdir()}
    shutil.rmtree(out)  # the registered copy outlives the training folder
    [listed] = list_adapters(andini_home)
    assert (listed.name, listed.base_model, listed.trained_at, listed.train_examples) == \
        ("smol-tools", "smollm2-135m-instruct", "2026-12-01T10:00:00Z", 599)
    assert listed.config == str(tmp_path / "run" / "smol-tools.yaml")
    assert listed.sources == ["toolcalls/glaive/glaive_toolcall_en_demo.json"]
    assert listed.data == str(tmp_path / "run" / "data") and listed.problem is None


def test_registering_again_replaces_the_adapter_whole(tmp_path, andini_home):
    register(tiny_adapter(tmp_path / "a" / "smol", finished_at="2026-12-01T10:00:00Z"), andini_home)
    register(tiny_adapter(tmp_path / "b" / "smol", finished_at="2026-12-02T10:00:00Z"), andini_home)
    assert [(a.name, a.trained_at) for a in list_adapters(andini_home)] == [("smol", "2026-12-02T10:00:00Z")]
    assert [p.name for p in (andini_home / "adapters").iterdir()] == ["smol"]  # no staging folder left


def test_bad_folder_and_bad_name_are_refused(tmp_path, andini_home):
    with pytest.raises(AndiniError, match="no adapter_config.json"):
        register(tmp_path, andini_home)
    with pytest.raises(AndiniError, match="cannot name an adapter"):
        register(tiny_adapter(tmp_path / "x"), andini_home, name="none")


def test_unset_picks_the_newest_adapter_of_the_served_model_never_another_base(registered, tmp_path):
    chosen = choose(None, None, registered)
    assert (chosen.name, chosen.reason) == ("newer", "newest")  # other-base is newer, but not this model's
    assert choose(None, OTHER_BASE, registered).name == "other-base"
    assert choose(None, str(tmp_path / "unknown-model"), registered).adapter is None


def test_the_setting_turns_it_off_or_names_one(registered, tmp_path):
    assert choose("none", None, registered).reason == "off" and choose("", None, registered).adapter is None
    named = choose("older", None, registered)
    assert (named.adapter, named.reason) == (str(registered / "adapters" / "older"), "set")
    folder = tiny_adapter(tmp_path / "loose")
    assert choose(str(folder), None, registered).adapter == str(folder)
    with pytest.raises(AndiniError, match=r"No adapter 'nope'.*older") as err:
        choose("nope", None, registered)
    assert "ANDINI_ADAPTER=none" in str(err.value)


def test_servers_and_evaluation_never_pick_one_by_themselves(registered):
    from agent.backends import served_adapter
    from andini.settings import get_settings

    assert choose(None, None, registered, local=False).adapter is None
    assert choose("my-lora", None, registered, local=False).adapter == "my-lora"  # the server's id, as is
    assert served_adapter(get_settings(), auto=False).adapter is None  # what eval and generate use
    assert served_adapter(get_settings(), adapter="older", auto=False).name == "older"


def test_the_agent_uses_the_newest_unless_the_setting_says_none(registered, monkeypatch):
    from agent.run import Agent
    from andini.settings import get_settings

    assert (Agent().adapter.name, Agent().adapter.reason) == ("newer", "newest")
    assert Agent(adapter="older").adapter.name == "older"
    monkeypatch.setenv("ANDINI_ADAPTER", "none")
    get_settings.cache_clear()
    assert Agent().adapter.adapter is None and Agent().adapter.reason == "off"
    monkeypatch.setenv("ANDINI_BACKEND", "tgi")
    monkeypatch.delenv("ANDINI_ADAPTER")
    get_settings.cache_clear()
    assert Agent().adapter.adapter is None  # a server is never sent a local folder


def test_cli_lists_and_adds_adapters(registered, tmp_path, capsys):
    from andini.cli import main

    assert main(["adapters", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [a["name"] for a in out["adapters"]] == ["other-base", "newer", "older"]
    assert out["active"]["name"] == "newer"
    assert main(["adapters", "add", str(tiny_adapter(tmp_path / "mine")), "--name", "hand-made"]) == 0
    assert "registered hand-made" in capsys.readouterr().out
    assert main(["adapters"]) == 0
    text = capsys.readouterr().out
    assert "* newer (smollm2-135m-instruct · 2026-12-02 10:00 · 8 examples)" in text
    assert "local backend: adapter newer (newest registered)" in text


def test_cli_still_lists_when_the_setting_names_no_adapter(registered, monkeypatch, capsys):
    from andini.cli import main
    from andini.settings import get_settings

    monkeypatch.setenv("ANDINI_ADAPTER", "nope")
    get_settings.cache_clear()
    assert main(["adapters"]) == 1
    out = capsys.readouterr()
    assert "older" in out.out and "No adapter 'nope'" in out.err


def test_ui_start_says_tool_calls_need_the_adapter_and_how_to_train_it(andini_home, tmp_path, monkeypatch):
    from pathlib import Path

    from andini.settings import get_settings
    from ui.app.launch import adapter_note

    note = adapter_note()
    assert note and "Tool calls need the fine-tuned adapter" in note and TRAIN_COMMAND in note
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert TRAIN_COMMAND in readme  # the command the README gives
    register(tiny_adapter(tmp_path / "smol-tools"), andini_home)
    assert adapter_note() == f"andini ui: adapter smol-tools (newest registered), {andini_home}/adapters/smol-tools"
    monkeypatch.setenv("ANDINI_BACKEND", "tgi")
    get_settings.cache_clear()
    assert adapter_note() is None


@pytest.mark.slow
def test_run_json_reports_the_adapter_that_answered(andini_home, tmp_path, monkeypatch, capsys):
    """The real model with a real (untrained, so harmless) LoRA on it, registered as training would."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from agent.local import get_engine
    from andini.cli import main
    from andini.models import load_model
    from andini.settings import get_settings

    model, _ = load_model(dtype=torch.float32)
    folder = tmp_path / "smol-lora"
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(folder)
    (folder / "run_manifest.json").write_text(json.dumps({"base_model": "smollm2-135m-instruct",
                                                          "finished_at": "2026-12-03T06:00:00Z"}))
    register(folder, andini_home)

    assert main(["run", "Say hi.", "--json", "--max-new-tokens", "16"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "done"
    assert out["adapter"] == {"adapter": str(andini_home / "adapters" / "smol-lora"), "name": "smol-lora",
                              "reason": "newest", "base_model": "smollm2-135m-instruct"}
    from agent.local import _ENGINES

    # the answering engine was built with this adapter (merged into its weights at load, so no PeftModel)
    assert (None, out["adapter"]["adapter"]) in _ENGINES
    assert not isinstance(get_engine(None, out["adapter"]["adapter"]).model, PeftModel)

    monkeypatch.setenv("ANDINI_ADAPTER", "none")
    get_settings.cache_clear()
    assert main(["run", "Say hi.", "--json", "--max-new-tokens", "16"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["adapter"]["adapter"] is None and out["adapter"]["reason"] == "off"
