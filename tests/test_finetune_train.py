"""Real tiny training runs of SmolLM2-135M (a few steps, very short sequences): the adapter moves and
the base does not, packing isolates examples, a killed run resumes, and a merged export computes what
the adapter computes."""

import json

import pytest
import yaml

from andini.schema import Example, Message, ToolCall, ToolSpec

pytestmark = pytest.mark.slow

TOOL = ToolSpec(name="add", parameters={"type": "object", "properties": {"a": {"type": "integer"},
                                                                        "b": {"type": "integer"}}})


def tiny_examples(n: int) -> list[Example]:
    return [Example(id=f"t{i}", messages=[Message(role="system", content="Be brief."),
                                          Message(role="user", content=f"{i}+{i + 1}?")],
                    tools=[TOOL], target_calls=[ToolCall(name="add", arguments={"a": i, "b": i + 1})])
            for i in range(n)]


@pytest.fixture
def tiny_run(tmp_path):
    """A config whose data/out already holds tiny train/val splits (no data build needed)."""
    out = tmp_path / "data"
    out.mkdir()
    examples = tiny_examples(10)
    (out / "train.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in examples[:8]))
    (out / "val.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in examples[8:]))
    config = {"data": {"sources": [], "out": str(out)},
              "model": {"base": "smollm2-135m-instruct", "format": "chatml"},
              "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
              "train": {"output_dir": str(tmp_path / "adapter"), "max_steps": 2, "batch_size": 2,
                        "max_seq_len": 512, "learning_rate": 0.01, "eval_steps": 1, "save_steps": 1,
                        "logging_steps": 1, "warmup_ratio": 0.0, "early_stopping_patience": None,
                        "precision": "fp32", "quality_examples": 0}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_packed_examples_do_not_attend_to_each_other():
    import torch

    from andini.models import load_model

    model, _ = load_model(dtype=torch.float32)
    a, b = [1, 504, 2632, 30, 2], [1, 906, 314, 1253, 28, 355, 2]
    with torch.no_grad():
        alone_a = model(input_ids=torch.tensor([a])).logits[0]
        alone_b = model(input_ids=torch.tensor([b])).logits[0]
        # as in training: no attention mask, no cache (transformers only reads packed positions then)
        packed = model(input_ids=torch.tensor([a + b]), use_cache=False,
                       position_ids=torch.tensor([list(range(len(a))) + list(range(len(b)))])).logits[0]
        causal = model(input_ids=torch.tensor([a + b])).logits[0]
    assert torch.allclose(packed[:len(a)], alone_a, atol=1e-4)
    assert torch.allclose(packed[len(a):], alone_b, atol=1e-4)
    assert not torch.allclose(causal[len(a):], alone_b, atol=1e-4)  # the test can tell the difference


def test_training_moves_the_adapter_and_not_the_base(tiny_run):
    import torch

    from finetune.config import load_config
    from finetune.data import load_split
    from finetune.render import load_tokenizer
    from finetune.train import build_model, make_trainer, pack, preflight, render_all

    config = load_config(tiny_run)
    checks = preflight(config)
    tokenizer = load_tokenizer(str(checks.base), "chatml")
    rows, too_long = render_all(load_split(config.data.out, "train"), tokenizer, checks.fmt, 512)
    assert too_long == 0 and all(r["position_ids"][0] == 0 for r in rows)
    model = build_model(config, checks)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = make_trainer(config, checks, model, pack(rows, 512), pack(rows[:2], 512))
    trainer.train()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert moved and moved <= trainable
    assert any("lora_B" in n for n in moved)
    assert all("lora_" in n for n in trainable)


def test_kill_and_resume_then_export_merge_equals_adapter(tiny_run, tmp_path):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from andini.models import load_model, model_dir
    from finetune.export import export
    from finetune.train import finetune

    messages = []
    first = finetune(tiny_run, progress=messages.append)
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert first["metrics"]["train_examples"] == 8 and "eval_loss" in first["metrics"]
    assert first["metrics"]["tokens_seen"] > 0 and first["metrics"]["final_loss"] > 0  # the run's own numbers
    assert (adapter / "checkpoint-2").is_dir()
    from andini.adapters import list_adapters
    from andini.settings import get_settings

    [registered] = list_adapters(get_settings().home)  # where the agent and the UI find it
    assert first["registered"] == str(registered.path) and registered.name == "adapter"
    assert (registered.base_model, registered.train_examples) == ("smollm2-135m-instruct", 8)
    assert (registered.path / "adapter_model.safetensors").read_bytes() == \
        (adapter / "adapter_model.safetensors").read_bytes()
    assert any(m.startswith("registered as 'adapter'") for m in messages)

    config = yaml.safe_load(tiny_run.read_text())  # a longer run picks up where the first stopped
    config["train"]["max_steps"] = 3
    tiny_run.write_text(yaml.safe_dump(config))
    messages.clear()
    finetune(tiny_run, progress=messages.append)
    assert any("resuming from" in m and m.endswith("checkpoint-2") for m in messages)
    state = json.loads((adapter / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    manifest = json.loads((adapter / "run_manifest.json").read_text())
    assert manifest["base_model"] == "smollm2-135m-instruct" and manifest["versions"]["peft"]

    merged_dir = export(adapter, tmp_path / "merged", merge=True)
    assert (merged_dir / "model.safetensors").exists() and not (merged_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    with_adapter, _ = load_model(dtype=torch.float32, adapter=str(adapter))
    base, _ = load_model(dtype=torch.float32)
    ids = torch.tensor([[1, 504, 2632, 30, 28, 355, 2]])
    with torch.no_grad():
        expected = with_adapter(input_ids=ids).logits
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-3)
        assert not torch.allclose(base(input_ids=ids).logits, expected, atol=1e-3)
    base_bf16 = tmp_path / "base-bf16"  # a bf16 base stays bf16 once merged: half the disk, what TGI loads
    AutoModelForCausalLM.from_pretrained(model_dir(), dtype=torch.bfloat16).save_pretrained(base_bf16)
    AutoTokenizer.from_pretrained(model_dir()).save_pretrained(base_bf16)
    merged_bf16 = export(adapter, tmp_path / "merged-bf16", merge=True, base=str(base_bf16))
    with safe_open(merged_bf16 / "model.safetensors", "pt") as tensors:
        assert {tensors.get_slice(k).get_dtype() for k in tensors.keys()} == {"BF16"}
    copy = export(adapter, tmp_path / "for-tgi")
    assert {p.name for p in copy.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
