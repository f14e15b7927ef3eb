"""Fine-tuning over several processes with the engine transformers' Trainer already drives: accelerate.

`andini finetune` needs no code of its own for this: under `accelerate launch` (or `torchrun`) the
Trainer in finetune/train.py wraps the model in DDP, or FSDP when the accelerate config says so, gives
each process its share of every global batch and averages the gradients. configs/accelerate_*.yaml and
docs/training-speed.md show the launch lines.

What lives here is the check that this path keeps the math: `python -m finetune.distributed` trains the
default model (SmolLM2-135M) with LoRA for a few steps through the same Trainer, on any number of
processes, and writes the per-step losses, so a test can compare 1 process against 2 (gloo on CPU) on
the same global batch and resume a checkpoint across process counts.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def world_size() -> int:
    """Processes in this run (torchrun and accelerate launch both set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def fixed_dataset(count: int, seq_len: int, vocab: int, seed: int) -> list[dict[str, list[int]]]:
    """Equal-length rows, every token labelled: each process's mean loss weighs the same, so the
    average over processes equals the one-process loss of the whole global batch."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, vocab, (count, seq_len), generator=gen)
    return [{"input_ids": r.tolist(), "labels": r.tolist()} for r in rows]


def load_base(name: str, seed: int) -> tuple[Any, int]:
    """(model, vocabulary size): the default SmolLM2-135M, or `tiny`, a 2-layer Llama built from its
    config with seeded weights (identical in every process; seconds instead of minutes on CPU)."""
    import torch

    torch.manual_seed(seed)
    if name == "tiny":
        from transformers import LlamaConfig, LlamaForCausalLM

        config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, vocab_size=512, max_position_embeddings=256)
        return LlamaForCausalLM(config), config.vocab_size
    from andini.models import load_model

    model, tokenizer = load_model(None if name == "default" else name, dtype=torch.float32)
    return model, len(tokenizer)


def build_trainer(out: Path, steps: int, global_batch: int, save_steps: int, seed: int,
                  seq_len: int, learning_rate: float, model_name: str = "default") -> Any:
    """The Trainer as finetune/train.py uses it (LoRA on all 7 projections), sized per process."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator

    if global_batch % world_size():
        raise ValueError(f"global batch {global_batch} does not split over {world_size()} processes")
    model, vocab = load_base(model_name, seed)
    model.config.use_cache = False
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    args = TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=global_batch // world_size(),
        gradient_accumulation_steps=1, learning_rate=learning_rate, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, logging_steps=1, save_strategy="steps", save_steps=save_steps,
        save_total_limit=None, report_to=[], use_cpu=True, seed=seed, data_seed=seed,
        dataloader_num_workers=0, remove_unused_columns=False, ddp_find_unused_parameters=False,
        ddp_backend="gloo" if world_size() > 1 else None, disable_tqdm=True)
    data = fixed_dataset(8 * global_batch, seq_len, vocab, seed)
    return Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator)


def train_and_log(args: argparse.Namespace) -> list[dict[str, float]]:
    """Train (or resume) and return [{step, loss}] as the Trainer logged them (averaged over processes)."""
    trainer = build_trainer(args.out, args.steps, args.global_batch, args.save_steps, args.seed, args.seq_len,
                            args.lr, args.model)
    trainer.train(resume_from_checkpoint=str(args.resume) if args.resume else None)
    history = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    if trainer.is_world_process_zero():
        (args.out / "losses.json").write_text(json.dumps({"world_size": world_size(), "losses": history}))
    return history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LoRA fine-tuning check over any number of processes.")
    parser.add_argument("--out", type=Path, required=True, help="checkpoints and losses.json go here")
    parser.add_argument("--model", default="default",
                        help="default (SmolLM2-135M), a local model folder, or tiny (config-built, for tests)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--global-batch", type=int, default=4, help="rows per optimizer step, over all processes")
    parser.add_argument("--save-steps", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", type=Path, help="a checkpoint folder to resume from (any process count)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        train_and_log(args)
    finally:
        close_process_group()
    return 0


def close_process_group() -> None:
    """Tear the process group down before exit: left to the interpreter's shutdown, gloo's worker
    threads can be destroyed while still joinable and abort the process ("terminate called without an
    active exception"), which turned a finished run into a failed one in CI."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
