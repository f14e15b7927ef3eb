"""`andini data build` on real data: validation counts, dedup, BFCL decontamination, stable stratified
splits, the card; and config errors that stop a run before any long work."""

import json
import subprocess
import sys

import pytest
import yaml

from andini.errors import AndiniError, InputError
from finetune.config import load_config
from finetune.data import build, explode, load_split
from finetune.readers import read_examples


def write_config(tmp_path, shared_data, base, **data_overrides):
    """A config over real data; `base` is the Mistral-shaped checkpoint, whose format is detected."""
    bfcl = list(read_examples(shared_data / "bfcl" / "BFCL_v4_simple_python.json", "bfcl"))[:3]
    leaked = tmp_path / "leaked.jsonl"  # three BFCL questions posing as training data, plus one duplicate
    leaked.write_text("".join(e.model_dump_json() + "\n" for e in [*bfcl, bfcl[0]]))
    data = {
        "root": str(shared_data), "out": str(tmp_path / "out"),
        "sources": [
            {"path": "toolcalls/seal-tools/dev.jsonl", "format": "seal", "cap": 60},
            {"path": "toolcalls/glaive/glaive_toolcall_en_demo.json", "format": "glaive", "explode": True, "cap": 40},
            {"path": "plans/coplan_planning_test.jsonl", "format": "coplan", "cap": 20},
            {"path": str(leaked), "format": "andini"}],
        "eval_files": [{"path": "bfcl/BFCL_v4_simple_python.json", "format": "bfcl"}],
        "val_fraction": 0.1, "test_fraction": 0.2, "irrelevance_fraction": 0.1, "distractor_tools": 1,
        "augment": {"compose_parallel": 0.2, "compose_multi": 0.2, "irrelevance_removal": 0.1, "mask_names": 0.3,
                    "shuffle_arguments": 0.3, "shuffle_tools": 0.5},
        "max_tokens": 600, **data_overrides}
    config = {"data": data, "model": {"base": str(base)},
              "train": {"output_dir": str(tmp_path / "adapter")}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_build_counts_everything_and_removes_bfcl(tmp_path, shared_data, mistral_shaped):
    card = build(load_config(write_config(tmp_path, shared_data, mistral_shaped)), progress=lambda _: None)
    out = tmp_path / "out"
    assert card["format"] == "mistral"  # read from the checkpoint's files: its name, m7b, says nothing
    assert {p.name for p in out.iterdir()} >= {"train.jsonl", "val.jsonl", "test.jsonl", "card.md", "card.json",
                                               "lengths.png", "problems.jsonl"}
    removed = card["removed"]
    # the three leaked questions (their duplicate went first) and near copies found in the real sets
    assert set(removed["decontaminated"]) == {"BFCL_v4_simple_python.json"}
    assert removed["decontaminated"]["BFCL_v4_simple_python.json"] >= 3
    assert removed["duplicate"]["exact"] >= 1
    assert sum(removed["invalid"].values()) == card["invalid_total"] > 0
    problems = [json.loads(line) for line in (out / "problems.jsonl").read_text().splitlines()]
    assert problems[0]["path"].endswith("dev.jsonl") and problems[0]["line"] and problems[0]["field"]
    texts = {m.content for name in ("train", "val", "test") for e in load_split(out, name) for m in e.messages}
    assert "Find the area of a triangle with a base of 10 units and height of 5 units." not in texts
    for name in ("train", "test"):  # stratified: each source in each split
        assert {"seal-tools", "glaive", "coplan"} <= set(card["splits"][name]["by_source"])
    assert card["splits"]["train"]["irrelevance"] > 0 and card["licenses"]["seal-tools"] == "Apache-2.0"
    n = removed["decontaminated"]["BFCL_v4_simple_python.json"]
    assert f"| decontaminated | BFCL_v4_simple_python.json | {n} |" in (out / "card.md").read_text()
    ids = {e.id for name in ("train", "val", "test") for e in load_split(out, name)}
    assert not ids & {"simple_python_0", "simple_python_1", "simple_python_2"}


def test_build_is_deterministic_and_conversations_stay_in_one_split(tmp_path, shared_data, mistral_shaped):
    config = load_config(write_config(tmp_path, shared_data, mistral_shaped))
    first = build(config, progress=lambda _: None)["files"]
    assert build(config, progress=lambda _: None)["files"] == first
    where = {}
    for name in ("train", "val", "test"):
        for e in load_split(tmp_path / "out", name):
            if "conversation" in e.meta:
                where.setdefault(e.meta["conversation"], set()).add(name)
    assert where and all(len(splits) == 1 for splits in where.values())


def test_explode_makes_one_example_per_assistant_turn(shared_data):
    ex = next(iter(read_examples(shared_data / "toolcalls" / "glaive" / "glaive_toolcall_en_demo.json", "glaive")))
    parts = explode(ex)
    assert len(parts) == 4
    assert parts[1].target_calls[0].name == "search_recipes" and parts[1].messages[-1].role == "user"
    assert parts[-1].target_text == ex.target_text and parts[-1].messages == ex.messages


def test_strict_build_stops_at_first_invalid_record(tmp_path, shared_data, mistral_shaped):
    with pytest.raises(InputError) as err:
        build(load_config(write_config(tmp_path, shared_data, mistral_shaped)), strict=True, progress=lambda _: None)
    assert err.value.path.endswith("dev.jsonl") and err.value.line and err.value.field


def test_config_typo_names_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  sources: []\ntrain:\n  learning_rat: 0.1\n")
    with pytest.raises(InputError) as err:
        load_config(path)
    assert err.value.field == "train.learning_rat" and "spelling" in err.value.hint


def test_config_unknown_format_and_bad_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  sources:\n    - {path: x.json, format: alpaca}\n")
    with pytest.raises(InputError) as err:
        load_config(path)
    assert err.value.field.startswith("data.sources.0.format")
    path.write_text("data: [unclosed\n")
    with pytest.raises(InputError, match="invalid YAML") as err:
        load_config(path)
    assert err.value.line


def test_finetune_fails_fast_on_missing_base_model_or_data(tmp_path, shared_data, mistral_shaped):
    from finetune.train import finetune

    path = write_config(tmp_path, shared_data, mistral_shaped)
    config = yaml.safe_load(path.read_text())
    config["model"] = {"base": str(tmp_path / "no-such-model"), "format": "chatml"}
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(AndiniError, match="No local model"):
        finetune(path)
    config["model"] = {"base": "smollm2-135m-instruct"}
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(AndiniError, match="No train split") as err:
        finetune(path)
    assert "data build" in err.value.hint


def test_qlora_without_cuda_is_a_clean_error(tmp_path, shared_data, mistral_shaped):
    import torch

    from finetune.train import preflight

    if torch.cuda.is_available():
        pytest.skip("CUDA present: QLoRA is allowed")
    path = write_config(tmp_path, shared_data, mistral_shaped)
    config = yaml.safe_load(path.read_text())
    config["model"] = {"base": "smollm2-135m-instruct"}
    config["train"]["quantization"] = "4bit"
    path.write_text(yaml.safe_dump(config))
    build(load_config(path), progress=lambda _: None)
    with pytest.raises(AndiniError, match="needs a CUDA GPU"):
        preflight(load_config(path))


def test_data_check_cli_reports_line_and_field(tmp_path, shared_data):
    result = subprocess.run([sys.executable, "-m", "andini.cli", "data", "check",
                             str(shared_data / "toolcalls" / "seal-tools" / "dev.jsonl"), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["format"] == "seal" and report["invalid"] > 0 and report["problems"][0]["field"]


def test_heldout_plan_goals_never_reach_training(tmp_path, shared_data, andini_home):
    from eval.plans import PlansConfig, read_plan_examples
    from finetune.data import plan_goal_key, plan_heldout_path

    plans = tmp_path / "plans"  # the first 120 records of both real CoPlan files: the same 120 goals twice
    plans.mkdir()
    for name in ("coplan_planning_test.jsonl", "coplan_constrained_test.jsonl"):
        lines = (shared_data / "plans" / name).read_text().splitlines()[:120]
        (plans / name).write_text("\n".join(lines) + "\n")
    config = {"data": {"root": str(plans), "out": str(tmp_path / "out"), "max_tokens": 4096,
                       "sources": [{"path": "coplan_planning_test.jsonl", "format": "coplan"},
                                   {"path": "coplan_constrained_test.jsonl", "format": "coplan"}]},
              "model": {"base": "smollm2-135m-instruct"}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    card = build(load_config(path), progress=lambda _: None)

    heldout = read_plan_examples(PlansConfig().data)  # what `andini eval plans` scores by default
    assert PlansConfig().data == plan_heldout_path() == andini_home / "data" / "plans_heldout.jsonl"
    held_goals = {plan_goal_key(e) for e in heldout}
    by_file = {}
    for e in heldout:
        by_file.setdefault(e.meta["source_file"], set()).add(plan_goal_key(e))
    # a held-out goal is held out of both files, and the split is about a fifth of the goals
    assert by_file["coplan_planning_test.jsonl"] == by_file["coplan_constrained_test.jsonl"] == held_goals
    assert 10 <= len(held_goals) <= 40 and card["plans_heldout"]["goals"] == len(held_goals)
    trained = [e for name in ("train", "val", "test") for e in load_split(tmp_path / "out", name)]
    assert trained and all(e.target_plan is not None for e in trained)
    assert not {plan_goal_key(e) for e in trained} & held_goals
    assert len({plan_goal_key(e) for e in trained}) + len(held_goals) == 120


def test_eval_plans_without_a_built_split_says_how_to_make_one():
    from eval.plans import PlansConfig, read_plan_examples

    with pytest.raises(InputError, match="no held-out plan split") as err:
        read_plan_examples(PlansConfig().data)
    assert "andini data build" in err.value.hint


def test_fast_path_is_typed_and_forbids_unknown_keys(tmp_path):
    from finetune.speed import FastPathOptions, apply_memory_class

    path = tmp_path / "c.yaml"
    path.write_text("data:\n  sources: []\nfast_path:\n  liger: false\n  compil: true\n")
    with pytest.raises(InputError) as err:
        load_config(path)
    assert err.value.field == "fast_path.compil" and "spelling" in err.value.hint
    path.write_text("data:\n  sources: []\nfast_path: false\n")
    assert load_config(path).fast_path == FastPathOptions(enabled=False)
    path.write_text("data:\n  sources: []\ntrain:\n  memory: 24gb\nfast_path:\n  checkpoint_policy: save-matmuls\n")
    config = apply_memory_class(load_config(path))  # the class applies, the config's own choice stays
    assert config.fast_path.checkpoint_policy == "save-matmuls" and config.train.gradient_checkpointing
    assert load_config(path).as_dict()["fast_path"]["checkpoint_policy"] == "save-matmuls"  # the manifest's form
