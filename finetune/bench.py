"""`andini bench train`: LoRA fine-tuning throughput, plain transformers + peft against the fast path.

The model is built from its config alone (random weights, nothing downloaded), the data is real
tool-calling examples rendered with the Mistral v3 tokenizer (mistral-common), and only real tokens
count: padding never does. Variants run in order on one model, each from the same LoRA initialisation;
the plain baseline always runs first. Prints a table and writes the full results as JSON.

Rendering needs mistral-common but no GPU; the GPU machine gets pre-rendered tokens
(`--render-only FILE` here, `--tokens FILE` there). See docs/training-speed.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from finetune.speed import FastPathOptions

#: Mistral-7B-v0.3's shape (7.25B parameters); random weights from this config alone.
SHAPES: dict[str, dict[str, Any]] = {
    "mistral-7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                       intermediate_size=14336, vocab_size=32768, max_position_embeddings=32768,
                       rope_theta=1_000_000.0, sliding_window=None, rms_norm_eps=1e-5),
    # Same vocabulary (the rendered tokens index it), tiny everything else: for CPU tests.
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=32768, max_position_embeddings=4096,
                 rope_theta=1_000_000.0, sliding_window=None, rms_norm_eps=1e-5),
}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
#: Dense bf16 peak of the card, for MFU (H100 SXM and H200 datasheet figure).
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}
#: (data file, reader format) under the shared data folder: the tool-calling sets andini trains on.
DATA_FILES = [("toolcalls/glaive/glaive_toolcall_en_demo.json", "glaive"),
              ("toolcalls/seal-tools/dev.jsonl", "seal"),
              ("bfcl/BFCL_v4_multiple.json", "bfcl"),
              ("bfcl/BFCL_v4_parallel_multiple.json", "bfcl"),
              ("toolcalls/nestful/non-executable-sgd-data.json", "nestful")]


@dataclass(frozen=True)
class Variant:
    """One row of the table: how batches are formed and which fast-path levers are on."""

    name: str
    lever: str  # what this row adds, for the table
    batching: str  # padded | concat | packed
    fast: FastPathOptions | None = None  # None: plain transformers + peft
    row_tokens: int = 16384  # packed: token budget of one micro-batch (one row)
    qlora: bool = False  # NF4 base weights through bitsandbytes
    parity: bool = False  # also train the parity steps and compare losses with the baseline


FAST = FastPathOptions()
VARIANTS: dict[str, Variant] = {v.name: v for v in [
    Variant("baseline", "transformers+peft, SDPA, padded 4 x <=2048, GC on", "padded", parity=True),
    Variant("concat", "reference: 4 x 2048 rows of concatenated examples", "concat"),
    Variant("packed", "+ packed 2048-token rows (position_ids restart, no cross-attention)", "packed",
            FastPathOptions(liger=False, fused_adamw=False)),
    Variant("liger", "+ Liger RMSNorm/SwiGLU/RoPE/fused linear CE", "packed",
            FastPathOptions(fused_adamw=False)),
    Variant("fused-adamw", "+ fused AdamW", "packed", FAST, parity=True),
    Variant("rows-32k", "+ 32768-token micro-batches", "packed", FAST, row_tokens=32768),
    Variant("selective-gc", "+ checkpoint 3/4 of the layers", "packed",
            FastPathOptions(checkpoint_fraction=0.75)),
    Variant("qlora", "QLoRA NF4, fast path", "packed", FAST, qlora=True),
    # The fast path sized to the memory targets: 24 GiB for bf16 LoRA, 12 GiB for QLoRA.
    Variant("fast-12k", "fast path, 12288-token micro-batches", "packed", FAST, row_tokens=12288, parity=True),
    Variant("qlora-8k", "QLoRA NF4, fast path, 8192-token micro-batches", "packed", FAST, row_tokens=8192,
            qlora=True),
]}
DEFAULT_VARIANTS = "baseline,packed,liger,fused-adamw,fast-12k,qlora-8k"


@dataclass
class Result:
    """Measured numbers for one variant."""

    name: str
    lever: str
    tokens_per_s: float = 0.0
    mfu: float = 0.0
    peak_gib: float = 0.0
    reserved_gib: float = 0.0
    steps: int = 0
    tokens: int = 0
    losses: list[float] = field(default_factory=list)  # parity-run losses, step by step
    parity_max_abs_diff: float | None = None
    error: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help=f"comma-separated, run in this order after the baseline; known: {', '.join(VARIANTS)}")
    parser.add_argument("--shape", default="mistral-7b", choices=sorted(SHAPES), help="model shape (random weights)")
    parser.add_argument("--tokens", type=Path, help="pre-rendered tokens (.npz from --render-only)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("ANDINI_SHARED_DATA", "../shared/data")),
                        help="shared data folder to render from when --tokens is not given")
    parser.add_argument("--render-only", type=Path, metavar="FILE", help="render the data to FILE (.npz) and stop")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator)")
    parser.add_argument("--parity-steps", type=int, default=50, help="steps of 4 examples compared with the baseline")
    parser.add_argument("--max-len", type=int, default=2048, help="examples are truncated to this many tokens")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda where present)")
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="seconds after which remaining variants are skipped (0: no limit)")
    parser.add_argument("--out", type=Path, help="write results.json here")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def main(args: argparse.Namespace) -> int:
    if args.render_only:
        count = render_tokens(args.data, args.render_only)
        print(f"rendered {count} examples to {args.render_only}")
        return 0
    examples = load_tokens(args.tokens) if args.tokens else render_examples(args.data)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        from andini.errors import AndiniError

        raise AndiniError(f"Unknown variant(s): {', '.join(unknown)}", hint=f"known: {', '.join(VARIANTS)}")
    names = ["baseline"] + [n for n in names if n != "baseline"]  # the baseline always runs first
    report = run_bench(examples, [VARIANTS[n] for n in names], args)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report) if args.json else format_table(report))
    return 0 if all(r["error"] is None for r in report["results"]) else 1


# --- data ------------------------------------------------------------------------------------------

def render_examples(data_dir: Path) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) for every example of DATA_FILES, rendered with the Mistral v3 tokenizer.

    Labels are -100 outside the final assistant turn. This renders with mistral-common directly so
    the benchmark needs nothing but the data; lengths, not exact training text, are what it measures.
    """
    from mistral_common.protocol.instruct.request import InstructRequest
    from mistral_common.protocol.instruct.tool_calls import Function, Tool
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    from finetune.readers import read_examples

    encoder = MistralTokenizer.v3().instruct_tokenizer
    rendered = []
    for rel, fmt in DATA_FILES:
        for ex in read_examples(Path(data_dir) / rel, fmt):
            tools = [Tool(function=Function(name=t.name, description=t.description, parameters=t.parameters))
                     for t in ex.tools] or None
            prompt = encoder.encode_instruct(InstructRequest(messages=_mc_messages(ex.messages),
                                                             available_tools=tools)).tokens
            full = encoder.encode_instruct(InstructRequest(
                messages=_mc_messages([*ex.messages, ex.target_message()]), available_tools=tools)).tokens
            if full[:len(prompt)] != prompt:  # the answer must extend the prompt; skip any that don't
                continue
            rendered.append((full, [-100] * len(prompt) + full[len(prompt):]))
    return rendered


def _mc_messages(messages: list[Any]) -> list[Any]:
    """andini Messages as mistral-common messages, with the 9-character call ids v3 requires."""
    from mistral_common.protocol.instruct.messages import (
        AssistantMessage,
        SystemMessage,
        ToolMessage,
        UserMessage,
    )
    from mistral_common.protocol.instruct.tool_calls import FunctionCall, ToolCall

    out: list[Any] = []
    issued: list[str] = []
    for m in messages:
        if m.role == "user":
            out.append(UserMessage(content=m.content))
        elif m.role == "system":
            out.append(SystemMessage(content=m.content))
        elif m.role == "assistant":
            calls = []
            for c in m.tool_calls:
                issued.append(f"c{len(issued):08d}")
                calls.append(ToolCall(id=issued[-1], function=FunctionCall(name=c.name,
                                                                          arguments=json.dumps(c.arguments))))
            out.append(AssistantMessage(content=m.content or None, tool_calls=calls or None))
        else:
            call_id = issued.pop(0) if issued else f"c{len(out):08d}"
            out.append(ToolMessage(content=m.content, tool_call_id=call_id, name=m.name))
    return out


def render_tokens(data_dir: Path, out: Path) -> int:
    """Render once and save ids and labels (uint16 ids; vocab 32768) for a machine without mistral-common."""
    import numpy as np

    examples = render_examples(data_dir)
    lengths = np.array([len(ids) for ids, _ in examples], dtype=np.int64)
    ids = np.concatenate([np.asarray(i, dtype=np.uint16) for i, _ in examples])
    trained = np.concatenate([np.asarray(lab, dtype=np.int64) != -100 for _, lab in examples])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, ids=ids, trained=trained, lengths=lengths)
    return len(examples)


def load_tokens(path: Path) -> list[tuple[list[int], list[int]]]:
    import numpy as np

    data = np.load(path)
    ids, trained, bounds = data["ids"].astype(np.int64), data["trained"], np.cumsum(data["lengths"])
    out = []
    for start, end in zip([0, *bounds[:-1]], bounds, strict=True):
        chunk = ids[start:end]
        out.append((chunk.tolist(), np.where(trained[start:end], chunk, -100).tolist()))
    return out


def example_stream(examples: list, seed: int, max_len: int) -> Iterator[tuple[list[int], list[int]]]:
    """Examples in a seeded shuffled order, truncated, repeated forever."""
    import random

    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    while True:
        for i in order:
            ids, labels = examples[i]
            yield ids[:max_len], labels[:max_len]


def padded_batch(group: list[tuple[list[int], list[int]]]) -> dict[str, Any]:
    """Right-padded to the longest, with an attention mask: what a plain collator does."""
    import torch

    width = max(len(ids) for ids, _ in group)
    input_ids = torch.zeros(len(group), width, dtype=torch.long)
    labels = torch.full((len(group), width), -100, dtype=torch.long)
    mask = torch.zeros(len(group), width, dtype=torch.long)
    for row, (ids, lab) in enumerate(group):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        labels[row, :len(ids)] = torch.tensor(lab)
        mask[row, :len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def packed_batch(group: list[tuple[list[int], list[int]]], row_tokens: int = 2048) -> dict[str, Any]:
    """Pack examples into rows of `row_tokens`, in order, with position_ids restarting per example.

    As finetune/train.py packs: no attention mask, so transformers derives a block-diagonal causal mask
    from the position_ids and examples never attend to each other. The tail of each row is filler that
    forms its own segment (positions from 0, labels -100); it is the only padding left and never counts.
    """
    import torch

    rows: list[tuple[list[int], list[int], list[int]]] = [([], [], [])]
    for ids, labels in group:
        ids, labels = ids[:row_tokens], labels[:row_tokens]
        if len(rows[-1][0]) + len(ids) > row_tokens:
            rows.append(([], [], []))
        row_ids, row_labels, row_pos = rows[-1]
        row_ids += ids
        row_labels += [-100] + labels[1:]  # never predict an example's first token from the previous one
        row_pos += range(len(ids))
    batch = {"input_ids": torch.zeros(len(rows), row_tokens, dtype=torch.long),
             "labels": torch.full((len(rows), row_tokens), -100, dtype=torch.long),
             "position_ids": torch.zeros(len(rows), row_tokens, dtype=torch.long)}
    for index, (row_ids, row_labels, row_pos) in enumerate(rows):
        used = len(row_ids)
        batch["input_ids"][index, :used] = torch.tensor(row_ids)
        batch["labels"][index, :used] = torch.tensor(row_labels)
        batch["position_ids"][index, :used] = torch.tensor(row_pos)
        batch["position_ids"][index, used:] = torch.arange(row_tokens - used)
    return batch


def concat_batch(stream: Iterator, rows: int, row_len: int) -> tuple[dict[str, Any], list[int]]:
    """Examples concatenated and cut into rows (they attend across boundaries), as run_clm does."""
    import torch

    ids: list[int] = []
    labels: list[int] = []
    lengths: list[int] = []
    while len(ids) < rows * row_len:
        i, lab = next(stream)
        ids += i
        labels += [-100] + lab[1:]  # the first token of an example is never predicted from the last one
        lengths.append(len(i))
    overflow = len(ids) - rows * row_len
    lengths[-1] -= overflow
    batch = {"input_ids": torch.tensor(ids[:rows * row_len]).view(rows, row_len),
             "labels": torch.tensor(labels[:rows * row_len]).view(rows, row_len)}
    return batch, lengths


@dataclass
class Step:
    """One optimizer step's micro-batch and the real example lengths in it (for tokens and FLOPs)."""

    batch: dict[str, Any]
    lengths: list[int]


def make_steps(examples: list, variant: Variant, count: int, seed: int, max_len: int) -> list[Step]:
    stream = example_stream(examples, seed, max_len)
    steps = []
    for _ in range(count):
        if variant.batching == "concat":
            batch, lengths = concat_batch(stream, 4, max_len)
            steps.append(Step(batch, lengths))
            continue
        if variant.batching == "padded":
            group = [next(stream) for _ in range(4)]
        else:
            group, leftover = _fill(stream, variant.row_tokens)
            stream = itertools.chain([leftover], stream)
        batch = padded_batch(group) if variant.batching == "padded" else packed_batch(group, max_len)
        steps.append(Step(batch, [len(ids) for ids, _ in group]))
    return steps


def _fill(stream: Iterator, budget: int) -> tuple[list, Any]:
    """Examples until the next would overflow the token budget; returns them and that next one."""
    group = [next(stream)]
    total = len(group[0][0])
    for item in stream:
        if total + len(item[0]) > budget:
            return group, item
        group.append(item)
        total += len(item[0])
    raise AssertionError("example_stream is endless")


def parity_steps(examples: list, packed: bool, count: int, seed: int, max_len: int) -> list[Step]:
    """The same groups of 4 examples as the baseline's steps, padded or packed."""
    stream = example_stream(examples, seed, max_len)
    steps = []
    for _ in range(count):
        group = [next(stream) for _ in range(4)]
        steps.append(Step(packed_batch(group, max_len) if packed else padded_batch(group), [len(i) for i, _ in group]))
    return steps


# --- model -----------------------------------------------------------------------------------------

def build_model(shape: str, device: str, seed: int, qlora: bool = False) -> Any:
    """Random-weight model from the config alone (bf16 on CUDA, fp32 on CPU), with LoRA r=16 on all 7 projections."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, MistralConfig

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    config = MistralConfig(**SHAPES[shape], attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    if qlora:
        quantize_nf4(model)
    model.requires_grad_(False)
    torch.manual_seed(seed + 1)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def quantize_nf4(model: Any) -> None:
    """Replace every decoder Linear with a bitsandbytes NF4 Linear4bit, layer by layer (frees bf16 as it goes)."""
    import bitsandbytes as bnb
    import torch

    for module in list(model.model.modules()):
        for name, child in list(module.named_children()):
            if not isinstance(child, torch.nn.Linear):
                continue
            quant = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=False, compute_dtype=torch.bfloat16,
                                      quant_type="nf4", compress_statistics=True, device="meta")
            weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4",
                                       compress_statistics=True)
            quant.weight = weight.to(child.weight.device)
            setattr(module, name, quant)
            del child
    model.is_loaded_in_4bit = True
    torch.cuda.empty_cache()


def configure(model: Any, variant: Variant) -> None:
    """Switch the shared model to this variant's levers (they only ever add up, in table order)."""
    from finetune import speed

    base = model.get_base_model()
    if variant.fast is None:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return
    if variant.fast.liger and next(base.parameters()).is_cuda:  # Liger's kernels are Triton: GPU only
        speed.apply_liger(base)
    speed.enable_checkpointing(base, variant.fast.checkpoint_fraction)


# --- training --------------------------------------------------------------------------------------

def train(model: Any, steps: list[Step], variant: Variant, lr: float, device: str) -> tuple[list[float], list[float]]:
    """Plain loop: forward, backward, AdamW step. Returns per-step loss and per-step seconds."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(variant.fast and variant.fast.fused_adamw and device.startswith("cuda"))
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=fused, foreach=None if fused else True)
    model.train()
    losses, seconds = [], []
    for step in steps:
        start = time.perf_counter()
        batch = {k: v.to(device, non_blocking=True) for k, v in step.batch.items()}
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())  # .item() synchronises, so the wall clock below is the step's
        seconds.append(time.perf_counter() - start)
    return losses, seconds


def step_flops(lengths: list[int], shape: dict[str, Any], n_params: int) -> float:
    """Useful FLOPs: 4N per token (forward + input gradients; frozen weights need no weight gradients)
    plus causal attention within each example (forward 2*d*l^2 per layer, backward twice that)."""
    layers, hidden = shape["num_hidden_layers"], shape["hidden_size"]
    return sum(4 * n_params * n + 6 * layers * hidden * n * n for n in lengths)


def measure(model: Any, variant: Variant, examples: list, args: argparse.Namespace, device: str,
            baseline_losses: list[float] | None) -> Result:
    import torch

    result = Result(variant.name, variant.lever)
    configure(model, variant)
    if variant.parity:
        steps = parity_steps(examples, variant.batching == "packed", args.parity_steps, args.seed, args.max_len)
        result.losses, _ = train(model, steps, variant, args.lr, device)
        _progress(None, f"{variant.name}: {len(steps)} parity steps, last loss {result.losses[-1]:.4f}")
        if baseline_losses is not None:
            result.parity_max_abs_diff = max(abs(a - b) for a, b in zip(result.losses, baseline_losses, strict=True))
        restore_lora(model)
    steps = make_steps(examples, variant, args.warmup + args.steps, args.seed + 1, args.max_len)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _, seconds = train(model, steps, variant, args.lr, device)
    _progress(None, f"{variant.name}: step seconds {' '.join(f'{x:.2f}' for x in seconds)}")
    timed = steps[args.warmup:]
    result.steps = len(timed)
    result.tokens = sum(sum(s.lengths) for s in timed)
    elapsed = sum(seconds[args.warmup:])
    result.tokens_per_s = result.tokens / elapsed
    flops = sum(step_flops(s.lengths, SHAPES[args.shape], args.n_params) for s in timed)
    result.mfu = flops / elapsed / (peak_tflops() * 1e12) if device.startswith("cuda") else 0.0
    if device.startswith("cuda"):
        result.peak_gib = torch.cuda.max_memory_allocated() / 2**30
        result.reserved_gib = torch.cuda.max_memory_reserved() / 2**30
    restore_lora(model)
    return result


def snapshot_lora(model: Any) -> None:
    model._andini_lora_init = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def restore_lora(model: Any) -> None:
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in model._andini_lora_init:
                param.copy_(model._andini_lora_init[name])


def peak_tflops() -> float:
    import torch

    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), 989.0)


def run_bench(examples: list, variants: list[Variant], args: argparse.Namespace) -> dict[str, Any]:
    """Run the variants in order on one bf16 model (a fresh NF4 one for QLoRA); one failure doesn't stop the rest."""
    import gc

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    model = build_model(args.shape, device, args.seed)
    snapshot_lora(model)
    _progress(started, f"built {args.shape} on {next(model.parameters()).device}")
    args.n_params = sum(p.numel() for p in model.get_base_model().parameters())
    results: list[Result] = []
    baseline_losses = None
    for variant in variants:
        if args.time_budget and time.perf_counter() - started > args.time_budget:
            results.append(Result(variant.name, variant.lever, error="skipped: --time-budget spent"))
            continue
        if variant.qlora and device.startswith("cuda"):
            del model
            gc.collect()
            torch.cuda.empty_cache()
            model = build_model(args.shape, device, args.seed, qlora=True)
            snapshot_lora(model)
        try:
            result = measure(model, variant, examples, args, device, baseline_losses)
        except Exception as exc:  # noqa: BLE001 - report the failure in the table, go on with the next lever
            result = Result(variant.name, variant.lever, error=f"{type(exc).__name__}: {exc}"[:300])
            restore_lora(model)
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        if variant.name == "baseline":
            baseline_losses = result.losses
        results.append(result)
        _progress(started, format_row(result, results[0]))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "partial.json").write_text(json.dumps([asdict(r) for r in results]))
    return {"device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
            "versions": _versions(), "args": {k: str(v) for k, v in vars(args).items() if k != "func"},
            "results": [asdict(r) for r in results]}


def _progress(started: float | None, message: str) -> None:
    print(f"[{time.perf_counter() - (started or _START):6.1f}s] {message}", flush=True)


_START = time.perf_counter()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "liger-kernel", "bitsandbytes", "triton"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


# --- table -----------------------------------------------------------------------------------------

def format_row(r: Result, base: Result) -> str:
    if r.error:
        return f"| {r.name} | {r.lever} | failed: {r.error} | | | | | |"
    speedup = r.tokens_per_s / base.tokens_per_s if base.tokens_per_s else math.nan
    loss = f"{r.losses[-1]:.4f}" if r.losses else "-"
    diff = f"{r.parity_max_abs_diff:.4f}" if r.parity_max_abs_diff is not None else "-"
    return (f"| {r.name} | {r.lever} | {r.tokens_per_s:,.0f} | {speedup:.2f}x | {100 * r.mfu:.1f}% "
            f"| {r.peak_gib:.1f} | {loss} | {diff} |")


def format_table(report: dict[str, Any]) -> str:
    results = [Result(**r) for r in report["results"]]
    head = ("| variant | lever | tokens/s | vs baseline | MFU | peak GiB | loss@parity end | max abs dloss |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [f"device: {report['device']}; {', '.join(f'{k} {v}' for k, v in report['versions'].items())}", head]
    lines += [format_row(r, results[0]) for r in results]
    return "\n".join(lines)


def replace_variant(name: str, **changes: Any) -> Variant:
    """A known variant with some fields changed (tests shrink row sizes this way)."""
    return replace(VARIANTS[name], **changes)
