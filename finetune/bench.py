"""`andini bench train`: tokens/s of `andini finetune`'s own training, beside what a user runs instead.

Every andini row is `andini finetune` without the files it writes: the config's training split
rendered by `train.render_all`, packed by `train.pack`, batched by `train.PackedCollator`, the model
from `train.build_model` (varlen attention, the fast path, LoRA) and the Trainer of
`train.make_trainer`. Rows differ only in their config: a memory class (`24gb`, `12gb`, `max`) and
`fast_path` switches, written `CLASS+key=value+...` (e.g. `max+compile=true`, `24gb+gc=false`).
The base is a checkpoint of the model's real shape with random weights, written once to a local
folder, so `from_pretrained` and QLoRA's quantize-on-load run as they do on real weights.

The anchors are plain transformers + peft with the Trainer's defaults on rows of concatenated
examples (SDPA; examples attend across their boundaries, as classic packing does): `plain-gc`
(4 x 2048, checkpointing on) and `plain-nogc` (2 x 2048, off). The Unsloth rows train the same
concatenated rows with the same Trainer arguments through Unsloth's FastLanguageModel, its LoRA and
its own checkpointing, as its documentation shows it: `unsloth-gc` (bf16) and `unsloth-qlora` (NF4).
Unsloth patches transformers when it is imported, so a plan of Unsloth rows imports it first and may
hold no other rows: run it as its own process, beside the anchors, on the same card. Only real
tokens count; a step's time runs from the end of the step before it to its own end, the device synchronised, so data
loading and the optimizer are in it. The first `--warmup` steps are not timed.

`--parity N` trains N steps of the same example groups (same order, same LoRA initialisation)
through the plain Trainer on padded batches, twice with two LoRA seeds (the baseline's own spread),
and through each andini row; it reports the mean per-step loss difference to the plain run.

Rendering needs mistral-common and the data, the GPU machine neither: `--render-only FILE` here,
`--rows FILE` there (docs/training-speed.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

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
#: Dense bf16 peak of the card, for MFU (H100 SXM and H200 datasheet figure).
PEAK_TFLOPS = 989.0
#: (rows, tokens a row, gradient checkpointing): the two setups of plain transformers + peft measured first
ANCHORS = {"plain-gc": (4, 2048, True), "plain-nogc": (2, 2048, False)}
#: (rows, tokens a row, 4-bit base): Unsloth on the plain-gc anchor's data
UNSLOTH = {"unsloth-gc": (4, 2048, False), "unsloth-qlora": (4, 2048, True)}
#: what `target_modules: all-linear` adapts in a Mistral layer (Unsloth wants the names)
LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_ROWS = "plain-gc,plain-nogc,24gb,12gb,max"


@dataclass
class Result:
    """Measured numbers for one row."""

    name: str
    tokens_per_s: float = 0.0
    mfu: float = 0.0
    peak_gib: float = 0.0  # while training (after loading)
    reserved_gib: float = 0.0
    load_peak_gib: float = 0.0  # while building the model and the Trainer
    start_gib: float = 0.0  # still allocated when the row started (should be ~0)
    steps: int = 0
    tokens: int = 0
    step_s: list[float] = field(default_factory=list)
    parity_losses: list[float] = field(default_factory=list)
    parity_mean_abs_diff: float | None = None  # against plain seed 0, mean over steps
    error: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=Path("configs/mistral-7b-qlora.yaml"),
                        help="the training config every andini row starts from")
    parser.add_argument("--rows-spec", "--variants", dest="rows_spec", default=DEFAULT_ROWS,
                        help="comma-separated rows: plain-gc, plain-nogc, or CLASS[+key=value...] with CLASS "
                             "24gb|12gb|max|none and keys fast_path options, gc, tokens, dropout")
    parser.add_argument("--shape", default="mistral-7b", choices=sorted(SHAPES), help="model shape (random weights)")
    parser.add_argument("--rows", type=Path, help="rendered examples (.npz from --render-only)")
    parser.add_argument("--render-only", type=Path, metavar="FILE",
                        help="render the config's training split (run `andini data build` first) to FILE and stop")
    parser.add_argument("--base-dir", type=Path, default=Path("/tmp/andini-bench-base"),
                        help="where the random-weight checkpoint is written (reused when present)")
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator)")
    parser.add_argument("--parity", type=int, default=0, metavar="N", help="also run N loss-parity steps per row")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda where present)")
    parser.add_argument("--time-budget", type=float, default=0.0,
                        help="seconds after which remaining rows are skipped (0: no limit)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="profile the first step after warm-up of each row (torch.profiler) and write "
                             "DIR/ROW.txt, its operators by device time")
    parser.add_argument("--out", type=Path, help="write results.json here")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def main(args: argparse.Namespace) -> int:
    from finetune.config import load_config

    config = load_config(args.config)
    if args.render_only:
        count = render_rows(config, args.render_only)
        print(f"rendered {count} training examples of {args.config} to {args.render_only}")
        return 0
    from andini.errors import AndiniError

    if not args.rows:
        raise AndiniError("No rendered examples given.", hint="render them with --render-only FILE, then --rows FILE")
    plan = parse_rows(args.rows_spec)
    if any(row.unsloth for row in plan):
        if not all(row.unsloth for row in plan):
            raise AndiniError("Unsloth rows cannot share a run with other rows: Unsloth patches transformers "
                              "for the whole process.", hint="run the Unsloth rows as their own --rows-spec")
        import unsloth  # noqa: F401 - before transformers and peft, as Unsloth asks: it patches them
    report = run_bench(config, load_rows(args.rows), plan, args)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report) if args.json else format_table(report))
    return 0 if all(r["error"] is None for r in report["results"]) else 1


# --- rows of the table -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """A plain anchor (`plain` set) or an andini config: memory class plus overrides."""

    name: str
    plain: tuple[int, int, bool] | None = None  # see ANCHORS
    unsloth: tuple[int, int, bool] | None = None  # see UNSLOTH
    memory: str | None = None
    gc: bool | None = None
    tokens: int | None = None
    dropout: float | None = None  # LoRA dropout
    fast_path: dict[str, Any] = field(default_factory=dict)


def parse_rows(spec: str) -> list[Row]:
    from andini.errors import AndiniError
    from finetune.speed import MEMORY_CLASSES, FastPathOptions

    rows = []
    for name in (s.strip() for s in spec.split(",") if s.strip()):
        head, *pairs = name.split("+")
        if head in ANCHORS:
            row = Row(name, plain=ANCHORS[head])
        elif head in UNSLOTH:
            row = Row(name, unsloth=UNSLOTH[head])
        elif head in (*MEMORY_CLASSES, "none"):
            row = Row(name, memory=None if head == "none" else head)
        else:
            raise AndiniError(f"Unknown row {name!r}.",
                              hint=f"start with {', '.join([*ANCHORS, *UNSLOTH, *MEMORY_CLASSES])} or none")
        for pair in pairs:
            key, _, raw = pair.partition("=")
            number = raw.replace(".", "", 1).isdigit()
            value = json.loads(raw) if raw in ("true", "false") or number else raw
            if key == "gc" and isinstance(value, bool):
                row = replace(row, gc=value)
            elif key == "tokens" and raw.isdigit():
                row = replace(row, tokens=int(raw))
            elif key == "dropout" and number:
                row = replace(row, dropout=float(raw))
            elif key in FastPathOptions.model_fields:
                row = replace(row, fast_path={**row.fast_path, key: value})
            else:
                raise AndiniError(f"Unknown key or value {pair!r} in row {name!r}.",
                                  hint="gc=true|false, tokens=N, dropout=X or a fast_path option")
        rows.append(row)
    return rows


def row_config(config: Any, row: Row, base: str, steps: int, out: str) -> Any:
    """The run config of an andini row: the memory class applied as `andini finetune` applies it, then
    one micro-batch per optimizer step (a step's time is then one micro-batch's) and no eval or saving."""
    from finetune.speed import apply_memory_class

    config = apply_memory_class(replace(config, train=replace(config.train, memory=row.memory),
                                        model=replace(config.model, base=base),
                                        fast_path=config.fast_path.merged(row.fast_path)))
    t = config.train
    batch = max(1, row.tokens // t.max_seq_len) if row.tokens else t.batch_size
    t = replace(t, batch_size=batch, grad_accum=1, max_steps=steps, eval_steps=10**6, save_steps=10**6,
                logging_steps=1, early_stopping_patience=None, quality_examples=0, output_dir=out,
                gradient_checkpointing=t.gradient_checkpointing if row.gc is None else row.gc)
    lora = config.lora if row.dropout is None else replace(config.lora, dropout=row.dropout)
    return replace(config, train=t, lora=lora)


# --- data ------------------------------------------------------------------------------------------

def render_rows(config: Any, out: Path) -> int:
    """The config's training split rendered exactly as `andini finetune` renders it, saved compactly."""
    import numpy as np

    from andini.formats import get_format
    from finetune.data import load_split
    from finetune.render import load_tokenizer
    from finetune.train import render_all

    fmt = get_format(config.format_name())
    rows, _ = render_all(load_split(config.data.out, "train"), load_tokenizer(config.model.base, fmt.name), fmt,
                         config.train.max_seq_len)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, ids=np.concatenate([np.asarray(r["input_ids"], dtype=np.int32) for r in rows]),
                        trained=np.concatenate([np.asarray(r["labels"]) != -100 for r in rows]),
                        lengths=np.array([len(r["input_ids"]) for r in rows], dtype=np.int64))
    return len(rows)


def load_rows(path: Path) -> list[dict]:
    """The rendered examples as train.render_all returns them."""
    import numpy as np

    data = np.load(path)
    ids, trained, bounds = data["ids"].astype(np.int64), data["trained"], np.cumsum(data["lengths"])
    rows = []
    for start, end in zip([0, *bounds[:-1]], bounds, strict=True):
        chunk = ids[start:end]
        rows.append({"input_ids": chunk.tolist(), "labels": np.where(trained[start:end], chunk, -100).tolist(),
                     "position_ids": list(range(end - start))})
    return rows


def concat_rows(rows: list[dict], width: int) -> list[dict]:
    """Examples end to end, cut into rows of `width` (the plain anchors' data: cross-attention and all)."""
    ids: list[int] = []
    labels: list[int] = []
    for r in rows:
        ids += r["input_ids"]
        labels += [-100] + r["labels"][1:]  # an example's first token is never predicted from the last one
    return [{"input_ids": ids[i:i + width], "labels": labels[i:i + width]}
            for i in range(0, len(ids) - width + 1, width)]


def padded_collator(features: list[dict]) -> dict:
    """Right-padded to the longest with an attention mask: what a plain collator does."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    batch = {"input_ids": torch.zeros(len(features), width, dtype=torch.long),
             "labels": torch.full((len(features), width), -100, dtype=torch.long),
             "attention_mask": torch.zeros(len(features), width, dtype=torch.long)}
    for i, f in enumerate(features):
        n = len(f["input_ids"])
        batch["input_ids"][i, :n] = torch.tensor(f["input_ids"])
        batch["labels"][i, :n] = torch.tensor(f["labels"])
        batch["attention_mask"][i, :n] = 1
    return batch


# --- the two ways to train -------------------------------------------------------------------------

def random_checkpoint(shape: str, folder: Path, device: str) -> Path:
    """A save_pretrained folder of the shape with random weights (bf16 on CUDA); reused when present."""
    import torch
    from transformers import AutoModelForCausalLM, MistralConfig

    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(MistralConfig(**SHAPES[shape]),
                                                 dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    model.save_pretrained(folder)
    del model
    return folder


def andini_trainer(config: Any, rows: list[dict], device: str, packed: bool = True) -> Any:
    """`andini finetune`'s Trainer for this config; packed as it packs, or one example per row (parity)."""
    import torch

    from andini.formats import get_format
    from finetune import train

    bf16 = config.train.precision == "bf16" and device == "cuda"
    checks = train.Preflight(base=Path(config.model.base), fmt=get_format(config.format_name()),
                             cuda=device == "cuda", dtype=torch.bfloat16 if bf16 else torch.float32)
    data = train.pack(rows, config.train.max_seq_len) if packed else rows
    return train.make_trainer(config, checks, train.build_model(config, checks), data, data[:1])


def plain_trainer(config: Any, data: list[dict], batch: int, checkpointing: bool, device: str, seed: int) -> Any:
    """transformers + peft as their documentation shows them: SDPA, the model's own loss, Trainer defaults."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer

    cuda = device == "cuda"
    base = AutoModelForCausalLM.from_pretrained(config.model.base, attn_implementation="sdpa",
                                                dtype=torch.bfloat16 if cuda else torch.float32)
    base.config.use_cache = False
    torch.manual_seed(seed)
    lora = config.lora
    model = get_peft_model(base, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                             target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    if checkpointing:
        model.enable_input_require_grads()
    return Trainer(model=model, args=plain_arguments(config, batch, checkpointing, cuda), train_dataset=data,
                   data_collator=padded_collator)


def unsloth_trainer(config: Any, data: list[dict], batch: int, quantized: bool, seed: int) -> Any:
    """Unsloth as its documentation shows it (FastLanguageModel, its LoRA, its offloaded checkpointing),
    with the plain anchors' Trainer arguments. CUDA only."""
    import torch
    from transformers import Trainer
    from unsloth import FastLanguageModel

    placeholder_tokenizer(Path(config.model.base))
    model, _ = FastLanguageModel.from_pretrained(config.model.base, max_seq_length=config.train.max_seq_len,
                                                 dtype=torch.bfloat16, load_in_4bit=quantized, fix_tokenizer=False)
    lora = config.lora
    modules = LINEAR_MODULES if lora.target_modules == "all-linear" else lora.target_modules
    model = FastLanguageModel.get_peft_model(model, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                             target_modules=modules, use_gradient_checkpointing="unsloth",
                                             random_state=seed)
    return Trainer(model=model, args=plain_arguments(config, batch, False, True), train_dataset=data,
                   data_collator=padded_collator)


def plain_arguments(config: Any, batch: int, checkpointing: bool, cuda: bool) -> Any:
    """The Trainer's defaults, with the config's schedule; one step per batch of `batch` rows."""
    from transformers import TrainingArguments

    t = config.train
    return TrainingArguments(output_dir=t.output_dir, max_steps=t.max_steps, learning_rate=t.learning_rate,
                             lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup_ratio,
                             weight_decay=t.weight_decay, per_device_train_batch_size=batch,
                             gradient_checkpointing=checkpointing,
                             gradient_checkpointing_kwargs={"use_reentrant": False}, bf16=cuda, use_cpu=not cuda,
                             logging_steps=1, save_strategy="no", eval_strategy="no", report_to=[], seed=t.seed,
                             data_seed=t.seed, remove_unused_columns=False, include_num_input_tokens_seen=True,
                             dataloader_num_workers=0)


def placeholder_tokenizer(folder: Path) -> None:
    """Unsloth loads a tokenizer from the model's folder. The rows are token ids already, so one of the
    checkpoint's vocabulary size with Mistral's special ids (0 unk, 1 bos, 2 eos) does; written once."""
    if (folder / "tokenizer.json").exists():
        return
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab_size = json.loads((folder / "config.json").read_text())["vocab_size"]
    vocab = {f"<t{i}>": i for i in range(vocab_size)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<t0>")),
                                        unk_token="<t0>", bos_token="<t1>", eos_token="<t2>", pad_token="<t0>")
    tokenizer.save_pretrained(folder)


def step_timer(device: str) -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall clock and tokens seen at the end of every optimizer step, the device synchronised."""

        def __init__(self) -> None:
            self.marks: list[tuple[float, int]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks = [(time.perf_counter(), state.num_input_tokens_seen)]

        def on_step_end(self, args, state, control, **kwargs):
            if device == "cuda":
                import torch

                torch.cuda.synchronize()
            self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

    return StepTimer()


def step_profiler(step: int, out: Path, device: str) -> Any:
    """Profiles optimizer step `step` + 1 (the first timed one) and writes its operators by device
    time: where a step's time goes, for the levers the table measures. The profiled step is slower
    than the rest, so the table's numbers come from a run without --profile."""
    import torch
    from transformers import TrainerCallback

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"

    class StepProfiler(TrainerCallback):
        def __init__(self) -> None:
            self.profiler: Any = None

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == step and self.profiler is None:
                self.profiler = torch.profiler.profile(activities=activities, record_shapes=False)
                self.profiler.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if self.profiler is not None and state.global_step == step + 1:
                if device == "cuda":
                    torch.cuda.synchronize()
                self.profiler.__exit__(None, None, None)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(self.profiler.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=70))

    return StepProfiler()


def train_losses(trainer: Any) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


# --- measuring -------------------------------------------------------------------------------------

def measure(row: Row, config: Any, rows: list[dict], args: argparse.Namespace, device: str) -> Result:
    import torch

    result = Result(row.name)
    free_memory()  # the previous row's model and optimizer must not count against this one
    if device == "cuda":
        result.start_gib = torch.cuda.memory_allocated() / 2**30
    out = str(Path(args.out or "/tmp/andini-bench") / "trainer" / row.name)
    steps = args.warmup + args.steps
    cfg = row_config(config, row, str(args.base_dir), steps, out)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if row.plain:
        count, width, checkpointing = row.plain
        data = concat_rows(rows, min(width, cfg.train.max_seq_len))  # CPU tests run shorter rows
        trainer = plain_trainer(cfg, data, count, checkpointing, device, cfg.train.seed)
    elif row.unsloth:
        count, width, quantized = row.unsloth
        data = concat_rows(rows, min(width, cfg.train.max_seq_len))
        trainer = unsloth_trainer(cfg, data, count, quantized, cfg.train.seed)
    else:
        trainer = andini_trainer(cfg, rows, device)
    if device == "cuda":
        result.load_peak_gib = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    timer = step_timer(device)
    trainer.add_callback(timer)
    if args.profile:
        trainer.add_callback(step_profiler(args.warmup, args.profile / f"{row.name}.txt", device))
    trainer.train()
    marks = timer.marks[args.warmup:]
    result.step_s = [round(b[0] - a[0], 3) for a, b in zip(timer.marks, timer.marks[1:], strict=False)]
    result.steps, result.tokens = len(marks) - 1, marks[-1][1] - marks[0][1]
    elapsed = marks[-1][0] - marks[0][0]
    result.tokens_per_s = result.tokens / elapsed if elapsed else 0.0
    if device == "cuda":
        result.peak_gib = torch.cuda.max_memory_allocated() / 2**30
        result.reserved_gib = torch.cuda.max_memory_reserved() / 2**30
        result.mfu = result.tokens_per_s * flops_per_token(args.shape, rows) / (PEAK_TFLOPS * 1e12)
    release(trainer)
    del trainer
    if args.parity:
        result.parity_losses = parity_losses(row, config, rows, args, device, out)
    return result


def parity_losses(row: Row, config: Any, rows: list[dict], args: argparse.Namespace, device: str, out: str,
                  seed: int | None = None) -> list[float]:
    """Per-step losses over the first parity examples, 4 per step in the Trainer's seeded order. LoRA
    dropout is off here: its masks depend on the batch's layout, and parity is about the kernels."""
    cfg = row_config(config, row, str(args.base_dir), args.parity, out + "-parity")
    cfg = replace(cfg, train=replace(cfg.train, batch_size=4), lora=replace(cfg.lora, dropout=0.0))
    subset = rows[:4 * args.parity]
    if row.plain:
        trainer = plain_trainer(cfg, subset, 4, row.plain[2], device, cfg.train.seed if seed is None else seed)
    elif row.unsloth:
        trainer = unsloth_trainer(cfg, subset, 4, row.unsloth[2], cfg.train.seed)
    else:
        trainer = andini_trainer(cfg, subset, device, packed=False)  # the collator packs each group of 4
    trainer.train()
    losses = train_losses(trainer)
    release(trainer)
    return losses


def release(trainer: Any) -> None:
    """Drop every reference the Trainer keeps to the model and optimizer, then the memory."""
    trainer.accelerator.free_memory()
    trainer.model = trainer.model_wrapped = trainer.optimizer = trainer.lr_scheduler = None
    handler = trainer.callback_handler
    handler.model = handler.optimizer = handler.lr_scheduler = None
    free_memory()


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def flops_per_token(shape: str, rows: list[dict]) -> float:
    """Useful FLOPs: 4N per token (forward and input gradients; frozen weights need no weight
    gradients) plus causal attention within each example of length l (6 * layers * hidden * l per token)."""
    s = SHAPES[shape]
    d, inter, layers, vocab = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"], s["vocab_size"]
    kv = d * s["num_key_value_heads"] // s["num_attention_heads"]
    n_params = layers * (2 * d * d + 2 * d * kv + 3 * d * inter) + 2 * vocab * d
    lengths = [len(r["input_ids"]) for r in rows]
    mean_square = sum(n * n for n in lengths) / sum(lengths)
    return 4 * n_params + 6 * layers * d * mean_square


def run_bench(config: Any, rows: list[dict], plan: list[Row], args: argparse.Namespace) -> dict[str, Any]:
    """Every row on the same checkpoint and examples; one failure doesn't stop the rest."""
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    random_checkpoint(args.shape, args.base_dir, device)
    _progress(started, f"random {args.shape} checkpoint at {args.base_dir}; {len(rows)} examples")
    results: list[Result] = []
    spread = None
    if args.parity:
        plain = Row("plain", plain=ANCHORS["plain-gc"])
        out = str(Path(args.out or "/tmp/andini-bench") / "trainer" / "spread")
        first, second = (parity_losses(plain, config, rows, args, device, out, seed=s) for s in (0, 1))
        spread = mean_abs_diff(first, second)
        _progress(started, f"plain parity: seed-to-seed mean |dloss| {spread:.4f}")
    for row in plan:
        if args.time_budget and time.perf_counter() - started > args.time_budget:
            results.append(Result(row.name, error="skipped: --time-budget spent"))
            continue
        try:
            result = measure(row, config, rows, args, device)
            if args.parity:
                result.parity_mean_abs_diff = mean_abs_diff(result.parity_losses, first)
        except Exception as exc:  # noqa: BLE001 - report the failure in the table, go on with the next row
            result = Result(row.name, error=f"{type(exc).__name__}: {exc}"[:300])
            free_memory()
        results.append(result)
        _progress(started, format_row(result, results[0]))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "partial.json").write_text(json.dumps([asdict(r) for r in results]))
    return {"device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
            "versions": _versions(), "config": str(args.config), "parity_spread": spread,
            "args": {k: str(v) for k, v in vars(args).items() if k != "func"},
            "results": [asdict(r) for r in results]}


def mean_abs_diff(a: list[float], b: list[float]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / max(1, len(a))


def _progress(started: float, message: str) -> None:
    print(f"[{time.perf_counter() - started:6.1f}s] {message}", flush=True)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "liger-kernel", "bitsandbytes", "unsloth"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


# --- table -----------------------------------------------------------------------------------------

def format_row(r: Result, base: Result) -> str:
    if r.error:
        return f"| {r.name} | failed: {r.error} | | | | | | | |"
    speedup = f"{r.tokens_per_s / base.tokens_per_s:.2f}x" if base.tokens_per_s else "-"
    parity = f"{r.parity_mean_abs_diff:.4f}" if r.parity_mean_abs_diff is not None else "-"
    return (f"| {r.name} | {r.tokens_per_s:,.0f} | {speedup} | {100 * r.mfu:.1f}% | {r.peak_gib:.1f} "
            f"| {r.reserved_gib:.1f} | {r.load_peak_gib:.1f} | {r.start_gib:.1f} | {parity} |")


def format_table(report: dict[str, Any]) -> str:
    results = [Result(**r) for r in report["results"]]
    spread = report.get("parity_spread")
    lines = [f"device: {report['device']}; {', '.join(f'{k} {v}' for k, v in report['versions'].items())}; "
             f"config {report['config']}" + (f"; plain seed-to-seed mean |dloss| {spread:.4f}" if spread else ""),
             "| row | tokens/s | vs first row | MFU | peak GiB | reserved GiB | load peak GiB | GiB at start "
             "| mean abs dloss vs plain |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [format_row(r, results[0]) for r in results]
    return "\n".join(lines)
