"""Run by hand on a GPU machine: the production fine-tuning path end to end, through the `andini` CLI.

    python3 benchmarks/gpu_production_path.py --out $OUT/prod            # one GPU, Mistral-7B-v0.3 shape
    python benchmarks/gpu_production_path.py --tiny --out /tmp/prod      # CPU smoke run, 2-layer shape

Every step that users run is a subprocess of the real command line (`python -m andini.cli`, so the
checkout needs no install, only PYTHONPATH), timed from outside:

1. base model: Mistral-7B-v0.3's shape (`finetune.bench.SHAPES`) with random weights, initialised on
   the GPU in bf16 and saved (to /dev/shm where it fits) in the Hub's layout, with the real v3
   tokenizer: mistral-common's copy as `tokenizer.model.v3` / `tokenizer.model`, and `tokenizer.json`
   converted from it by transformers (what `andini export --merge` saves beside the merged weights).
2. `andini data build CONFIG`, unless the config's `data.out` already holds the splits: the GPU
   machine has neither the shared data nor matplotlib (the card's plot), so there the splits are
   built beforehand with the same command and carried; the report records the card's hash.
3. `andini finetune --json` on a copy of each config that differs only in the keys the report lists
   (base model folder, output folder, steps, one packed row per step, one evaluation and checkpoint):
   the QLoRA production config, then the bf16 LoRA one (`configs/mistral-7b-lora.yaml`, or the QLoRA
   config with `train.quantization: none` where that file does not exist).
4. `andini export ADAPTER --out DIR`, and `--merge` for the QLoRA adapter (the first run).
5. logits: the base with the adapter (peft) against the merged folder on held-out prompts rendered in
   the Mistral format; equal within one bf16 step at the logits' scale (2^-8 of their largest value),
   and the adapter's own effect (base against base + adapter) beside it, so "equal" cannot mean
   "the adapter did nothing".

Prints one table and writes report.json (after every step, so a run cut short keeps what it measured)
and the logs of every command under --out. Stages run in order of importance; each gets what is left
of --budget-s, so the command ends, with its report, inside the machine's time limit.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QLORA_CONFIG = ROOT / "configs/mistral-7b-qlora.yaml"
LORA_CONFIG = ROOT / "configs/mistral-7b-lora.yaml"  # used when present
TOKENIZER_FILES = ("tokenizer.model.v3", "tokenizer.model")  # both are the v3 SentencePiece model on the Hub


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="report.json, logs, manifests and configs go here")
    p.add_argument("--tiny", action="store_true", help="CPU smoke run: 2-layer shape, a few steps, no QLoRA")
    p.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda, cpu with --tiny")
    p.add_argument("--work", type=Path, help="base model, runs and exports (default: /dev/shm/andini-prod when "
                                             "it has room, else the temp folder)")
    p.add_argument("--steps", type=int, help="optimizer steps of the QLoRA run (default 120; 6 with --tiny)")
    p.add_argument("--lora-steps", type=int, help="optimizer steps of the bf16 LoRA run (default 100; 6 with --tiny)")
    p.add_argument("--rows", type=int, default=1, help="packed rows of train.max_seq_len tokens per step")
    p.add_argument("--prompts", type=int, default=4, help="held-out prompts for the logits check")
    p.add_argument("--prompt-tokens", type=int, default=1024, help="prompt length cap for the logits check")
    p.add_argument("--check-dtype", choices=("fp32", "bf16"), default="fp32",
                   help="dtype of both models in the logits check (export merges in fp32)")
    p.add_argument("--shared-data", type=Path, help="ANDINI_SHARED_DATA for `andini data build`, when it runs")
    p.add_argument("--budget-s", type=float, default=450.0, help="stop starting work after this many seconds")
    p.add_argument("--keep", action="store_true", help="keep the merged model and the exports (base is reused)")
    p.add_argument("--stage", choices=("base", "check"), help=argparse.SUPPRESS)  # internal: child processes
    p.add_argument("--info", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--shape", default="mistral-7b", help=argparse.SUPPRESS)
    p.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--adapter", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--merged", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--data-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    args.shape = "tiny" if args.tiny else args.shape
    args.steps = args.steps or (6 if args.tiny else 120)
    args.lora_steps = args.lora_steps or (6 if args.tiny else 100)
    return args


# ---------------------------------------------------------------- child stages (they import torch)


def base_stage(args: argparse.Namespace) -> dict[str, Any]:
    """The random-weight checkpoint with the v3 tokenizer files; what the machine has, for the report."""
    import torch

    from finetune.bench import random_checkpoint

    started = time.time()
    random_checkpoint(args.shape, args.base, args.device)  # reused when present
    model_s = time.time() - started
    write_tokenizer(args.base)
    info = {"model_s": round(model_s, 1), "tokenizer_s": round(time.time() - started - model_s, 1),
            "size_gib": round(folder_bytes(args.base) / 2**30, 2), "tokenizer": tokenizer_agreement(args.base),
            "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name(0) if args.device == "cuda" else f"cpu x{os.cpu_count()}",
            "versions": {name: version(name) for name in ("transformers", "peft", "accelerate", "bitsandbytes",
                                                          "liger-kernel", "mistral_common", "pydantic")}}
    if args.device == "cuda":
        info["init_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return info


def write_tokenizer(base: Path) -> None:
    """The Hub's tokenizer files of Mistral-7B-Instruct-v0.3, made from mistral-common's v3 model."""
    from transformers import LlamaTokenizer

    from finetune.render import mistral_v3_file

    if (base / "tokenizer.json").exists():
        return
    for name in TOKENIZER_FILES:
        shutil.copyfile(mistral_v3_file(), base / name)
    LlamaTokenizer.from_pretrained(base).save_pretrained(base)  # tokenizer.json, converted by sentencepiece


def tokenizer_agreement(base: Path) -> dict[str, Any]:
    """Whether the converted HF tokenizer encodes as mistral-common does (text pieces and control tokens).
    Runs of spaces are left out: transformers' conversion splits "x  y" as "▁x ▁▁ y", SentencePiece as
    "▁x ▁ ▁y" (andini renders with mistral-common, so training does not see the difference)."""
    from transformers import AutoTokenizer

    from finetune.render import mistral_tokenizer

    raw = mistral_tokenizer(str(base)).instruct_tokenizer.tokenizer
    hf = AutoTokenizer.from_pretrained(base)
    texts = ["Hello world", 'get_weather{"city": "Paris", "unit": "C"}', "Ünïcödé – 東京 🙂", "a\nb\n\nc"]
    mismatched = [t for t in texts if raw.encode(t, bos=False, eos=False) != hf(t, add_special_tokens=False)["input_ids"]]
    controls = ["[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]"]
    mismatched += [c for c in controls if raw.get_special_token(c) != hf.convert_tokens_to_ids(c)]
    return {"vocab": raw.n_words, "hf_vocab": len(hf), "mismatched": mismatched, "matches": not mismatched
            and raw.n_words == len(hf) and (raw.bos_id, raw.eos_id) == (hf.bos_token_id, hf.eos_token_id)}


def check_stage(args: argparse.Namespace) -> dict[str, Any]:
    """Logits of base + adapter (peft) and of the merged folder on the same held-out prompts."""
    import torch
    from peft import PeftModel

    from andini.formats import detect_format, get_format, prompt_text
    from finetune.data import load_split
    from finetune.quality import tool_examples
    from finetune.render import load_tokenizer, segment_encoder

    fmt = get_format("mistral")
    encode = segment_encoder(load_tokenizer(str(args.base), fmt.name), fmt)
    examples = tool_examples(load_split(args.data_out, "test"), args.prompts)
    prompts = [encode(prompt_text(fmt, e.messages, e.tools))[:args.prompt_tokens] for e in examples]
    dtype = torch.float32 if args.check_dtype == "fp32" else torch.bfloat16
    started = time.time()

    def logits(model: Any) -> list[Any]:
        with torch.no_grad():
            return [model(input_ids=torch.tensor([ids], device=args.device)).logits[0].float().cpu() for ids in prompts]

    model = PeftModel.from_pretrained(load_causal_lm(args.base, dtype, args.device), str(args.adapter)).eval()
    with model.disable_adapter():
        base = logits(model)
    tuned = logits(model)
    del model
    release(args.device)
    merged = logits(load_causal_lm(args.merged, dtype, args.device).eval())
    diff = max(float((m - t).abs().max()) for m, t in zip(merged, tuned, strict=True))
    effect = max(float((t - b).abs().max()) for t, b in zip(tuned, base, strict=True))
    scale = max(float(t.abs().max()) for t in tuned)
    tolerance = scale * 2**-8  # one bf16 step at the largest logit
    top1 = sum(int((m.argmax(-1) == t.argmax(-1)).sum()) for m, t in zip(merged, tuned, strict=True))
    return {"dtype": args.check_dtype, "prompts": len(prompts), "tokens": sum(map(len, prompts)),
            "max_abs_diff": diff, "adapter_effect": effect, "max_abs_logit": scale, "tolerance": tolerance,
            "top1_agreement": round(top1 / max(sum(map(len, prompts)), 1), 4),
            "equal": diff <= tolerance, "adapter_moved": effect > tolerance,
            "passed": diff <= tolerance < effect, "wall_s": round(time.time() - started, 1),
            "detected_format": {"base": detect_format(args.base), "merged": detect_format(args.merged)}}


def load_causal_lm(path: Path, dtype: Any, device: str) -> Any:
    from transformers import AutoModelForCausalLM

    if device == "cuda":  # straight to the GPU, no full copy in host memory
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map={"": 0})
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)


def release(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- the orchestrating parent (no torch)


class Run:
    """The report, the clock and the logs of one invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.started = args, time.time()
        self.logs = args.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items() if v is not None},
                                       "stages": {}, "started_at": stamp()}

    def left(self) -> float:
        return self.args.budget_s - (time.time() - self.started)

    def save(self) -> None:
        self.report["elapsed_s"] = round(time.time() - self.started, 1)
        (self.args.out / "report.json").write_text(json.dumps(self.report, indent=2, default=str) + "\n")

    def command(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
        """Run one command with the time that is left; its stdout and stderr go to logs/NAME.log."""
        entry: dict[str, Any] = {"command": " ".join(argv)}
        self.report["stages"][name] = entry
        if self.left() <= 5:
            entry["skipped"] = "budget spent"
            self.save()
            return entry
        print(f"[{time.time() - self.started:6.0f}s] {name}: {' '.join(argv[2:])[:150]}", flush=True)
        started = time.time()
        with open(self.logs / f"{name}.log", "w") as log:
            try:
                done = subprocess.run(argv, cwd=ROOT, env={**os.environ, **child_env(self.args), **(env or {})},
                                      stdout=log, stderr=subprocess.STDOUT, timeout=self.left())
                entry["rc"] = done.returncode
            except subprocess.TimeoutExpired:
                entry["rc"], entry["error"] = None, f"stopped at the budget ({self.args.budget_s:.0f} s)"
        entry["wall_s"] = round(time.time() - started, 1)
        if entry["rc"] != 0:
            entry.setdefault("error", f"exit status {entry['rc']}")
            entry["log_tail"] = (self.logs / f"{name}.log").read_text(errors="replace")[-1500:]
            print(f"    FAILED ({entry['error']}); log tail:\n{entry['log_tail'][-700:]}", flush=True)
        self.save()
        return entry

    def stage(self, name: str, **kwargs: Any) -> dict[str, Any]:
        """This script as a child (`--stage`), its JSON result merged into the report entry."""
        info = self.args.out / f"{name}.json"
        flags = [x for k, v in kwargs.items() for x in (f"--{k.replace('_', '-')}", str(v))]
        entry = self.command(name, [sys.executable, __file__, "--stage", name.split("-")[0],
                                    "--out", str(self.args.out), "--info", str(info), "--device", self.args.device,
                                    *(["--tiny"] if self.args.tiny else []), *flags])
        if entry.get("rc") == 0 and info.exists():
            entry.update(json.loads(info.read_text()))
            self.save()
        return entry


def child_env(args: argparse.Namespace) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""), "ANDINI_HOME": str(args.work / "home"),
            "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "PYTHONUNBUFFERED": "1"}


def andini(*argv: str) -> list[str]:
    return [sys.executable, "-m", "andini.cli", *argv]


def run_configs(args: argparse.Namespace) -> list[tuple[str, Path, dict[str, Any], int]]:
    """(name, config, extra overrides, steps) of each fine-tuning run, in order."""
    runs = [("qlora", QLORA_CONFIG, {}, args.steps)]
    if LORA_CONFIG.exists():
        runs.append(("lora", LORA_CONFIG, {}, args.lora_steps))
    else:
        runs.append(("lora", QLORA_CONFIG, {"train.quantization": "none"}, args.lora_steps))
    return runs


def derived_config(args: argparse.Namespace, name: str, source: Path, extra: dict[str, Any], steps: int,
                   base: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of `source` with the keys a time-boxed run must change; returns its path and those keys."""
    import yaml

    raw = yaml.safe_load(source.read_text())
    overrides: dict[str, Any] = {
        "model.base": str(base), "data.root": str((source.parent / raw["data"].get("root", ".")).resolve()),
        "train.output_dir": str(args.work / "runs" / name), "train.max_steps": steps,
        "train.batch_size": args.rows, "train.grad_accum": 1, "train.eval_steps": steps, "train.save_steps": steps,
        "train.logging_steps": max(1, min(10, steps // 4)), "train.max_val_examples": 8 if args.tiny else 64,
        "train.quality_examples": 2 if args.tiny else 8, **extra}
    for key, value in overrides.items():
        section, field = key.split(".")
        raw.setdefault(section, {})[field] = value
    path = args.out / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {source.relative_to(ROOT)} with: {json.dumps(overrides)}\n" + yaml.safe_dump(raw, sort_keys=False))
    return path, overrides


def ensure_data(run: Run, config: Path) -> dict[str, Any]:
    """The config's splits: built here by `andini data build`, or already there (carried)."""
    import yaml

    out = ROOT / yaml.safe_load(config.read_text())["data"]["out"]
    if not (out / "train.jsonl").exists():
        env = {"ANDINI_SHARED_DATA": str(run.args.shared_data)} if run.args.shared_data else {}
        entry = run.command(f"data-{config.stem}", andini("data", "build", str(config.relative_to(ROOT))), env)
    else:
        entry = run.report["stages"].setdefault(f"data-{config.stem}", {"prebuilt": True})
    card = out / "card.json"
    if card.exists():
        import hashlib

        entry.update({"out": str(out.relative_to(ROOT)), "card_sha256": hashlib.sha256(card.read_bytes()).hexdigest(),
                      "splits": {k: v["examples"] for k, v in json.loads(card.read_text())["splits"].items()}})
    run.save()
    return entry


def finetune(run: Run, name: str, source: Path, extra: dict[str, Any], steps: int, base: Path) -> dict[str, Any]:
    config, overrides = derived_config(run.args, name, source, extra, steps, base)
    import yaml

    if run.args.device == "cpu" and yaml.safe_load(config.read_text())["train"].get("quantization") == "4bit":
        run.report["stages"][name] = entry = {"skipped": "QLoRA needs CUDA (train.quantization: 4bit)"}
        return entry
    out = Path(overrides["train.output_dir"])
    if out.exists():
        shutil.rmtree(out)  # a fresh run: no resuming from an earlier invocation's checkpoints
    entry = run.command(name, andini("finetune", "--no-resume", "--json", str(config)))
    entry["overrides"] = overrides
    manifest = out / "run_manifest.json"
    if entry.get("rc") == 0 and manifest.exists():
        shutil.copy(manifest, run.args.out / f"{name}_manifest.json")
        m = json.loads(manifest.read_text())["metrics"]
        entry.update({k: m.get(k) for k in ("steps", "train_runtime", "tokens_seen", "tokens_per_s", "peak_gib",
                                            "final_loss", "train_loss", "eval_loss", "train_rows", "train_examples",
                                            "too_long", "quality")})
        entry["train_wall_s"] = m.get("wall_s")  # trainer.train() alone; entry["wall_s"] is the whole command
        entry["adapter"] = str(out)
    run.save()
    return entry


def export(run: Run, name: str, adapter: Path, merge: bool) -> dict[str, Any]:
    out = run.args.work / "exports" / (f"{name}-merged" if merge else f"{name}-adapter")
    if out.exists():
        shutil.rmtree(out)
    stage = f"export-{name}-{'merged' if merge else 'adapter'}"
    entry = run.command(stage, andini("export", str(adapter), "--out", str(out), *(["--merge"] if merge else [])))
    if entry.get("rc") == 0:
        entry.update({"out": str(out), "size_mib": round(folder_bytes(out) / 2**20, 1),
                      "files": sorted(p.name for p in out.iterdir())})
    run.save()
    return entry


def work_folder(args: argparse.Namespace) -> Path:
    """/dev/shm when it holds the base, the fp32 merged copy and headroom (3x bf16), else the temp folder."""
    import tempfile

    from finetune.bench import SHAPES

    shape = SHAPES[args.shape]
    h, layers, inter, vocab = shape["hidden_size"], shape["num_hidden_layers"], shape["intermediate_size"], shape["vocab_size"]
    params = 2 * vocab * h + layers * (2 * h * h + 2 * h * h * shape["num_key_value_heads"] // shape["num_attention_heads"]
                                       + 3 * h * inter)
    need = 2 * params * 3 + 4 * 2**30
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > need:
        return shm / "andini-prod"
    return Path(tempfile.gettempdir()) / "andini-prod"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stage:
        sys.path.insert(0, str(ROOT))
        info = base_stage(args) if args.stage == "base" else check_stage(args)
        args.info.write_text(json.dumps(info, default=str))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    args.work = (args.work or work_folder(args)).resolve()
    base = args.work / f"base-{args.shape}"
    run = Run(args)
    run.report.update({"work": str(args.work), "shadowed": shadowed_packages()})
    if not run.stage("base", base=base, shape=args.shape).get("rc") == 0:
        return finish(run, base)
    runs = run_configs(args)
    for source in dict.fromkeys(src for _, src, _, _ in runs):
        ensure_data(run, source)
    merged_one = False
    for name, source, extra, steps in runs:  # QLoRA first: its adapter is the one merged and checked
        entry = finetune(run, name, source, extra, steps, base)
        if not entry.get("adapter"):
            continue
        adapter = Path(entry["adapter"])
        export(run, name, adapter, merge=False)
        if merged_one:
            continue
        merged_one = True
        merged = export(run, name, adapter, merge=True)
        if merged.get("rc") == 0:
            import yaml

            run.stage(f"check-{name}", base=base, adapter=adapter, merged=merged["out"],
                      data_out=ROOT / yaml.safe_load(source.read_text())["data"]["out"], prompts=args.prompts,
                      prompt_tokens=args.prompt_tokens, check_dtype=args.check_dtype)
            if not args.keep:  # the fp32 merged copy is twice the base: free the memory for the next run
                shutil.rmtree(merged["out"], ignore_errors=True)
    return finish(run, base)


def finish(run: Run, base: Path) -> int:
    if not run.args.keep:
        shutil.rmtree(run.args.work / "exports", ignore_errors=True)
    run.report["finished_at"] = stamp()
    run.save()
    table = format_table(run.report)
    (run.args.out / "table.md").write_text(table + "\n")
    print(table, flush=True)
    stages = run.report["stages"]
    checks = [s for k, s in stages.items() if k.startswith("check-")]
    failed = [k for k, s in stages.items() if s.get("error")] + [k for k, s in stages.items()
                                                                  if k.startswith("check-") and not s.get("passed")]
    print(f"report: {run.args.out / 'report.json'}; {'failed: ' + ', '.join(failed) if failed else 'all passed'}"
          f"{'' if checks else ' (no logits check ran)'}", flush=True)
    return 1 if failed or not checks else 0


def format_table(report: dict[str, Any]) -> str:
    stages = report["stages"]
    base = stages.get("base", {})
    lines = [f"device: {base.get('device')} | torch {base.get('torch')} (CUDA {base.get('torch_cuda')}) | "
             f"{', '.join(f'{k} {v}' for k, v in base.get('versions', {}).items())}",
             f"base: {base.get('size_gib')} GiB random weights in {base.get('model_s')} s, tokenizer "
             f"{'matches mistral-common' if base.get('tokenizer', {}).get('matches') else base.get('tokenizer')}",
             "", "| run | steps | command wall s | train s | tokens/s | peak GiB | final loss | eval loss | adapter MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("qlora", "lora"):
        s = stages.get(name, {})
        if "skipped" in s or "error" in s:
            lines.append(f"| {name} | {s.get('skipped') or s.get('error')} | {s.get('wall_s', '-')} | | | | | | |")
            continue
        if not s:
            continue
        adapter = stages.get(f"export-{name}-adapter", {}).get("size_mib", "-")
        lines.append(f"| {name} | {s.get('steps')} | {s.get('wall_s')} | {s.get('train_wall_s')} | "
                     f"{fmt(s.get('tokens_per_s'), ',.0f')} | {s.get('peak_gib') or '-'} | {fmt(s.get('final_loss'), '.4f')} | "
                     f"{fmt(s.get('eval_loss'), '.4f')} | {adapter} |")
    for key, s in stages.items():
        if key.startswith("export-") and key.endswith("-merged"):
            lines.append(f"\nmerged export ({key}): {s.get('size_mib', '-')} MiB in {s.get('wall_s')} s"
                         f"{'; ' + s['error'] if s.get('error') else ''}")
        if key.startswith("check-"):
            if "max_abs_diff" in s:
                lines.append(f"logits, merged vs base + adapter ({s['dtype']}, {s['prompts']} prompts, {s['tokens']} "
                             f"tokens): max abs diff {s['max_abs_diff']:.3g} (tolerance {s['tolerance']:.3g}); adapter "
                             f"effect {s['adapter_effect']:.3g}; top-1 agreement {s['top1_agreement']}; "
                             f"{'PASS' if s['passed'] else 'FAIL'}")
            else:
                lines.append(f"logits check: {s.get('error') or s.get('skipped')}")
    lines.append(f"elapsed {report.get('elapsed_s')} s")
    return "\n".join(lines)


def fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def shadowed_packages() -> dict[str, list[str]]:
    """Distributions installed more than once on sys.path (a carried wheel the machine already had)."""
    seen: dict[str, list[str]] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        seen.setdefault(name, []).append(f"{dist.version} @ {dist.locate_file('')}")
    return {k: v for k, v in sorted(seen.items()) if len(v) > 1}


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


if __name__ == "__main__":
    sys.exit(main())
