"""`andini finetune CONFIG.yaml`: LoRA / QLoRA with transformers' Trainer and peft.

Reads top to bottom: check everything that can fail cheaply (config, format, base model, data splits,
CUDA for QLoRA); render and pack the examples; build the model with its adapter; train with eval,
early stopping and checkpoints (a rerun resumes from the last one); save the adapter (TGI loads it
with --lora-adapters) and a run manifest. The Trainer is used unchanged, so `accelerate launch` and
torchrun (DDP, FSDP) work as for any Trainer script.

Packing is padding-free: examples are packed into rows and `position_ids` restart at 0 for each. The
collator flattens a batch into one sequence with its cumulative example lengths, and the model runs
`finetune.varlen` attention: a flash kernel on GPU, SDPA per example on CPU, so packed examples never
attend to each other (tests/test_speed_hooks.py checks the loss against unpacked runs).

The loss is computed only where a label exists: the model's `logits_to_keep` takes the positions that
predict an assistant token, so the 49k-wide head (the largest single cost of SmolLM2-135M) runs on a
fraction of the tokens. Calling the model's own forward keeps DDP/FSDP hooks intact.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from andini.errors import AndiniError
from andini.formats import ChatFormat, get_format
from andini.models import HUB_IDS
from andini.schema import Example
from finetune.config import RunConfig, load_config
from finetune.render import IGNORE, load_tokenizer, render_example

# ---------------------------------------------------------------- checks before any long work


@dataclass(frozen=True)
class Preflight:
    """What the checks found and later steps use: the base model's folder, its chat format, the device."""

    base: Path
    fmt: ChatFormat
    cuda: bool
    #: torch.bfloat16 or torch.float32: the dtype the base model is loaded in.
    dtype: Any

    @property
    def bf16(self) -> bool:
        import torch

        return self.dtype == torch.bfloat16


def preflight(config: RunConfig) -> Preflight:
    """Fail fast and clearly, before any long work; returns what later steps need."""
    import torch

    from andini.models import model_dir

    base = model_dir(config.model.base)  # a local folder, or the embedded default converted once
    fmt = get_format(config.format_name())
    data_dir = Path(config.data.out)
    for split in ("train", "val"):
        if not (data_dir / f"{split}.jsonl").exists():
            raise AndiniError(f"No {split} split in {data_dir}.", hint=f"run `andini data build {config.path}` first")
    cuda = torch.cuda.is_available()
    if config.train.quantization == "4bit":
        if not cuda:
            raise AndiniError("QLoRA (quantization: 4bit) needs a CUDA GPU; none is available.",
                              hint="set train.quantization: none for a CPU run")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise AndiniError("QLoRA needs bitsandbytes.", hint="pip install 'andini[gpu]'") from exc
    from andini.models import best_cpu_dtype

    bf16 = config.train.precision == "bf16" or (config.train.precision == "auto" and best_cpu_dtype() == torch.bfloat16)
    return Preflight(base=base, fmt=fmt, cuda=cuda, dtype=torch.bfloat16 if bf16 else torch.float32)


# ---------------------------------------------------------------- data: render, pack, collate


def render_all(examples: list[Example], tokenizer: Any, fmt: Any, max_len: int) -> tuple[list[dict], int]:
    """Rendered examples that fit in `max_len` tokens, and how many did not."""
    rows, too_long = [], 0
    for ex in examples:
        ids, labels = render_example(ex, tokenizer, fmt)
        if len(ids) > max_len:
            too_long += 1
            continue
        rows.append({"input_ids": ids, "labels": labels, "position_ids": list(range(len(ids)))})
    return rows, too_long


def pack(rows: list[dict], max_len: int) -> list[dict]:
    """First-fit-decreasing packing into rows of at most `max_len` tokens; position_ids restart per example."""
    bins: list[dict] = []
    for row in sorted(rows, key=lambda r: -len(r["input_ids"])):
        for b in bins:
            if len(b["input_ids"]) + len(row["input_ids"]) <= max_len:
                break
        else:
            b = {"input_ids": [], "labels": [], "position_ids": []}
            bins.append(b)
        for key in b:
            b[key].extend(row[key])
    return bins


class PackedCollator:
    """Flattens the batch's rows into one sequence (no padding at all) with its example lengths."""

    def __call__(self, features: list[dict]) -> dict:
        import torch

        from finetune.varlen import sequence_lengths

        flat: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
        for f in features:
            for key in flat:
                flat[key].extend(f[key])
        batch = {k: torch.tensor([v], dtype=torch.long) for k, v in flat.items()}
        return {**batch, **sequence_lengths(flat["position_ids"])}


def selective_loss(model: Any, inputs: dict, num_items: Any = None) -> Any:
    """Sum of token cross-entropies at labelled positions only (divided by num_items, else the count)."""
    import torch
    import torch.nn.functional as F

    labels = inputs["labels"]
    targets = labels[:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(-1)  # positions t whose token t+1 is trained
    if keep.numel() == 0:
        keep = torch.zeros(1, dtype=torch.long, device=labels.device)
    from finetune.varlen import LENGTH_KEYS

    lengths = {k: inputs[k] for k in LENGTH_KEYS if k in inputs}
    out = model(input_ids=inputs["input_ids"], position_ids=inputs["position_ids"], logits_to_keep=keep,
                use_cache=False, **lengths)
    logits = out.logits.float()
    picked = targets[:, keep]
    total = F.cross_entropy(logits.reshape(-1, logits.size(-1)), picked.reshape(-1), ignore_index=IGNORE,
                            reduction="sum")
    count = num_items if num_items is not None else (picked != IGNORE).sum().clamp(min=1)
    return total / count, out


def make_trainer_class():
    from transformers import Trainer

    class SelectiveLossTrainer(Trainer):
        """Trainer whose loss runs the LM head only where labels exist (see module docstring)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, out = selective_loss(model, inputs, num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # the Trainer's own rule for a token-summed loss
            return (loss, out) if return_outputs else loss

    return SelectiveLossTrainer


# ---------------------------------------------------------------- model


def build_model(config: RunConfig, checks: Preflight) -> Any:
    """The base model from its folder, with packed attention, the fast path and the LoRA adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune import varlen

    kwargs: dict[str, Any] = {"dtype": checks.dtype, "attn_implementation": varlen.register()}
    if config.train.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    base = AutoModelForCausalLM.from_pretrained(checks.base, **kwargs)
    base.config.use_cache = False
    # No prepare_model_for_kbit_training for QLoRA: it casts the norms and embeddings to fp32, so every
    # activation after them is fp32 (measured on the H200: 18.3 GiB and 3,884 tokens/s at 8k tokens;
    # docs/training-speed.md). peft freezes the base itself; checkpointing needs input grads, set below.
    if checks.cuda:
        from finetune import speed

        base = speed.apply_fast_path(base, config)
    lora = config.lora
    torch.manual_seed(config.train.seed)  # the same LoRA initialisation every run
    layers = base.config.num_hidden_layers
    first = layers - max(1, round(layers * lora.top_layers))
    peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                             target_modules=lora.target_modules, task_type="CAUSAL_LM",
                             layers_to_transform=list(range(first, layers)) if first else None)
    from finetune.speed import apply_to_adapter

    model = apply_to_adapter(get_peft_model(base, peft_config), config)  # unchanged on CPU
    if config.train.gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def training_arguments(config: RunConfig, checks: Preflight) -> Any:
    from transformers import TrainingArguments
    from transformers.integrations import is_mlflow_available, is_tensorboard_available

    t = config.train
    report_to = [name for name, ok in (("tensorboard", is_tensorboard_available()),
                                       ("mlflow", is_mlflow_available())) if ok]
    args: dict[str, Any] = dict(
        output_dir=t.output_dir, num_train_epochs=t.epochs, max_steps=t.max_steps, learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum, gradient_checkpointing=t.gradient_checkpointing,
        eval_strategy="steps", eval_steps=t.eval_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, load_best_model_at_end=t.early_stopping_patience is not None,
        metric_for_best_model="eval_loss", greater_is_better=False, logging_steps=t.logging_steps,
        seed=t.seed, data_seed=t.seed, report_to=report_to, prediction_loss_only=True,
        remove_unused_columns=False, include_num_input_tokens_seen=True, dataloader_num_workers=0,
        bf16=checks.cuda and checks.bf16,
        use_cpu=not checks.cuda,
    )
    if checks.cuda:
        from finetune import speed

        args.update(speed.training_overrides(config))
    return TrainingArguments(**args)


def throughput_callback():
    from transformers import TrainerCallback

    class Throughput(TrainerCallback):
        """Adds tokens/s to every log line (and so to the progress bar and TensorBoard)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.start, self.tokens0 = time.time(), state.num_input_tokens_seen

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs is not None and "loss" in logs:
                seen = state.num_input_tokens_seen - self.tokens0
                logs["tokens_per_s"] = round(seen / max(time.time() - self.start, 1e-9), 1)

    return Throughput()


# ---------------------------------------------------------------- the run


def finetune(config_path: Path | str, resume: bool | None = None, progress=print) -> dict[str, Any]:
    """Train an adapter as the config says and register it; returns the run manifest (also written beside
    the adapter) with `registered`, the adapter's registered folder."""
    import torch
    from transformers.trainer_utils import get_last_checkpoint

    from finetune.speed import apply_memory_class

    config = apply_memory_class(load_config(config_path))
    checks = preflight(config)
    t = config.train
    if t.threads:
        torch.set_num_threads(t.threads)
    from finetune.data import load_split

    tokenizer = load_tokenizer(str(checks.base), checks.fmt.name)
    train_rows, dropped = render_all(load_split(config.data.out, "train"), tokenizer, checks.fmt, t.max_seq_len)
    val_rows, _ = render_all(load_split(config.data.out, "val")[:t.max_val_examples], tokenizer, checks.fmt,
                             t.max_seq_len)
    if not train_rows:
        raise AndiniError("No training example fits in train.max_seq_len.", hint="raise max_seq_len or data.max_tokens")
    train_set = pack(train_rows, t.max_seq_len) if t.packing else train_rows
    val_set = pack(val_rows, t.max_seq_len) if t.packing else val_rows
    progress(f"{len(train_rows)} training examples in {len(train_set)} rows ({dropped} longer than "
             f"{t.max_seq_len} tokens left out), {len(val_rows)} validation examples")

    trainer = make_trainer(config, checks, build_model(config, checks), train_set, val_set)
    last = get_last_checkpoint(t.output_dir) if Path(t.output_dir).is_dir() else None
    resume_from = last if (resume is None or resume) and last else None
    if resume_from:
        progress(f"resuming from {resume_from}")
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resume_from)
    wall = time.time() - started
    metrics = {**result.metrics, **trainer.evaluate(), "wall_s": round(wall, 1),
               "train_examples": len(train_rows), "train_rows": len(train_set), "too_long": dropped,
               **run_numbers(trainer.state, wall, checks.cuda)}
    save_adapter(trainer.model, config, t.output_dir)
    if t.quality_examples:
        from finetune import varlen
        from finetune.quality import before_after
        from finetune.speed import read_lora_input_as_is

        varlen.use(trainer.model, "sdpa")  # generation pads prompts and keeps a cache: plain SDPA
        read_lora_input_as_is(trainer.model, False)  # generation runs outside the Trainer's autocast
        metrics["quality"] = before_after(trainer.model, tokenizer, checks.fmt,
                                          load_split(config.data.out, "test"), t.quality_examples)
    manifest = write_manifest(config, metrics, t.output_dir)
    if trainer.is_world_process_zero():  # one copy, however many processes trained
        from andini.adapters import register
        from andini.settings import get_settings

        info = register(Path(t.output_dir), get_settings().home)
        manifest["registered"] = str(info.path)
        progress(f"registered as '{info.name}' in {info.path.parent}: andini ui and andini run use it")
    return manifest


def run_numbers(state: Any, wall: float, cuda: bool) -> dict[str, Any]:
    """What a run report needs beside the Trainer's own metrics: optimizer steps, tokens trained on
    (real tokens: batches are unpadded), their rate over train()'s wall time (evaluations and
    checkpoints included), the last logged training loss and, on a GPU, the peak memory allocated."""
    import torch

    losses = [log["loss"] for log in state.log_history if "loss" in log]
    numbers: dict[str, Any] = {"steps": state.global_step, "tokens_seen": state.num_input_tokens_seen,
                               "tokens_per_s": round(state.num_input_tokens_seen / max(wall, 1e-9), 1),
                               "final_loss": losses[-1] if losses else None}
    if cuda:
        numbers["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return numbers


def make_trainer(config: RunConfig, checks: Preflight, model: Any, train_set: list, val_set: list) -> Any:
    """The Trainer with our loss, collator, throughput log and early stopping."""
    from transformers import EarlyStoppingCallback

    callbacks = [throughput_callback()]
    if config.train.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.train.early_stopping_patience))
    return make_trainer_class()(model=model, args=training_arguments(config, checks), train_dataset=train_set,
                                eval_dataset=val_set, data_collator=PackedCollator(),
                                callbacks=callbacks)


def save_adapter(model: Any, config: RunConfig, out: str) -> None:
    """The PEFT adapter folder; base_model_name_or_path names the hub id TGI should pair it with."""
    model.save_pretrained(out)
    cfg_path = Path(out, "adapter_config.json")
    adapter_cfg = json.loads(cfg_path.read_text())
    adapter_cfg["base_model_name_or_path"] = HUB_IDS.get(config.model.base, config.model.base)
    cfg_path.write_text(json.dumps(adapter_cfg, indent=2) + "\n")


def write_manifest(config: RunConfig, metrics: dict[str, Any], out: str) -> dict[str, Any]:
    """run_manifest.json: config, data card hash, base model, versions, metrics."""
    import peft
    import torch
    import transformers

    from andini import __version__
    from finetune.card import file_sha256

    card = Path(config.data.out, "card.json")
    manifest = {
        "config": config.as_dict(), "base_model": config.model.base, "format": config.format_name(),
        "data_card_sha256": file_sha256(card) if card.exists() else None,
        "versions": {"andini": __version__, "python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": peft.__version__},
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu x{os.cpu_count()}",
        "metrics": metrics, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(out, "run_manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest
