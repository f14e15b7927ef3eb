"""Real adapter folders for the registry tests: a tiny random Llama with a PEFT LoRA saved by peft, and
the run manifest written by `finetune.train.write_manifest`, so listing reads what training writes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from andini.models import DEFAULT_MODEL


def tiny_adapter(folder: Path, base_model: str = DEFAULT_MODEL, finished_at: str = "2026-12-01T10:00:00Z",
                 train_examples: int = 8) -> Path:
    """An adapter folder as `andini finetune` leaves it: adapter_config.json, weights, run_manifest.json
    whose base_model is `base_model` (what registry matching reads; the weights fit a tiny Llama)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from finetune.config import load_config
    from finetune.train import write_manifest

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])).save_pretrained(folder)
    run = folder.parent / f"{folder.name}.yaml"
    run.write_text(yaml.safe_dump({
        "data": {"sources": [{"path": "toolcalls/glaive/glaive_toolcall_en_demo.json", "format": "glaive"}],
                 "out": str(folder.parent / "data")},
        "model": {"base": base_model, "format": "chatml"}, "train": {"output_dir": str(folder)}}))
    write_manifest(load_config(run), {"train_examples": train_examples, "eval_loss": 0.5}, str(folder))
    manifest = json.loads((folder / "run_manifest.json").read_text())
    manifest["finished_at"] = finished_at  # distinct times, so "newest" is decided by them
    (folder / "run_manifest.json").write_text(json.dumps(manifest))
    return folder
