"""`andini export ADAPTER --out DIR [--merge]`: an adapter folder for TGI, or a merged model.

Without --merge, DIR gets the adapter files TGI's `--lora-adapters NAME=DIR` reads
(adapter_config.json, adapter_model.safetensors) and the run manifest. With --merge, the LoRA weights
are folded into the base (peft's merge_and_unload) and DIR is a plain safetensors model with its
tokenizer, loadable by anything that reads save_pretrained folders. The merge runs in float32 and the
result is rounded once to the base's own stored dtype: a bf16 Mistral-7B stays a 14 GB bf16 folder
(merged in float32 and saved so, it was 27.7 GB, measured on the H200), which is what TGI loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from andini.adapters import ADAPTER_FILES
from andini.errors import AndiniError


def adapter_base(adapter: Path, base: str | None = None) -> str:
    """The base model an adapter was trained on: given, else from its run manifest, else its config."""
    if base:
        return base
    manifest = adapter / "run_manifest.json"
    if manifest.exists():
        return json.loads(manifest.read_text())["base_model"]
    return json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]


def stored_dtype(name: str):
    """The dtype a base model's folder stores its weights in (config.json), float32 when it says none."""
    import torch

    from andini.models import model_dir

    config = json.loads((model_dir(name) / "config.json").read_text())
    stored = config.get("dtype") or config.get("torch_dtype") or "float32"
    return getattr(torch, stored)


def export(adapter: Path | str, out: Path | str, merge: bool = False, base: str | None = None) -> Path:
    adapter, out = Path(adapter), Path(out)
    if not (adapter / "adapter_config.json").exists():
        raise AndiniError(f"No PEFT adapter at {adapter} (no adapter_config.json).",
                          hint="give the folder `andini finetune` wrote (train.output_dir)")
    if out.exists() and any(out.iterdir()):
        raise AndiniError(f"{out} exists and is not empty.", hint="choose a new folder; nothing is overwritten")
    out.mkdir(parents=True, exist_ok=True)
    if not merge:
        for name in ADAPTER_FILES:
            if (adapter / name).exists():
                shutil.copy2(adapter / name, out / name)
        return out
    import torch

    from andini.models import load_model

    name = adapter_base(adapter, base)
    model, tokenizer = load_model(name, dtype=torch.float32, adapter=str(adapter))
    merged = model.merge_and_unload().to(stored_dtype(name))
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
