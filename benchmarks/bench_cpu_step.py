"""Where a CPU training step's time goes, and what each lever buys: SmolLM2-135M + LoRA on real rows.

Rows are the built training split (`andini data build CONFIG` first), rendered and packed exactly as
`andini finetune` does; each variant runs the same rows from the same LoRA initialisation and times
forward (with the loss computed only at labelled positions), backward and the optimizer step apart.
Prints one table; `--json` writes the numbers.

    .venv/bin/python benchmarks/bench_cpu_step.py configs/smollm2-cpu.yaml --steps 4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any


def rows_for(config_path: str, steps: int) -> tuple[list[dict], Any]:
    from finetune.config import load_config
    from finetune.data import load_split
    from finetune.render import load_tokenizer
    from finetune.train import pack, preflight, render_all

    config = load_config(config_path)
    checks = preflight(config)
    tokenizer = load_tokenizer(str(checks.base), checks.fmt.name)
    rows, _ = render_all(load_split(config.data.out, "train"), tokenizer, checks.fmt, config.train.max_seq_len)
    packed = pack(rows, config.train.max_seq_len)
    return packed[len(packed) // 3: len(packed) // 3 + steps], (config, checks)


# Each variant is a change to the shipped config's `lora` section, built by `finetune.train.build_model`,
# the function `andini finetune` uses, so a lever measured here is a lever the trainer has.
VARIANTS: dict[str, dict[str, Any]] = {
    "all-linear, dropout 0.05 (shipped before)": {"dropout": 0.05},
    "all-linear, dropout 0": {"dropout": 0.0},
    "all-linear, top 2/3 of layers, dropout 0": {"dropout": 0.0, "top_layers": 2 / 3},
    "all-linear, top half of layers, dropout 0": {"dropout": 0.0, "top_layers": 0.5},
}


def run_variant(rows: list[dict], config: Any, checks: Any, variant: dict[str, Any]) -> dict[str, float]:
    import torch

    from finetune.train import PackedCollator, build_model, selective_loss

    config = dataclasses.replace(config, lora=dataclasses.replace(config.lora, **variant))
    model = build_model(config, checks)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    collate = PackedCollator()
    times = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    cpu = 0.0  # CPU seconds of this process: far less sensitive than wall time to other load
    tokens = labelled = 0
    for i, row in enumerate(rows):
        batch = collate([row])
        c0 = time.process_time()
        t0 = time.perf_counter()
        loss, _ = selective_loss(model, batch)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        t3 = time.perf_counter()
        if i == 0:
            continue  # warm-up
        cpu += time.process_time() - c0
        times["forward"] += t1 - t0
        times["backward"] += t2 - t1
        times["optimizer"] += t3 - t2
        tokens += len(row["input_ids"])
        labelled += sum(x != -100 for x in row["labels"])
    total = sum(times.values())
    return {**{k: round(v / max(len(rows) - 1, 1), 3) for k, v in times.items()},
            "step_s": round(total / max(len(rows) - 1, 1), 3), "tokens_per_s": round(tokens / total, 1),
            "cpu_s_per_1k_tokens": round(1000 * cpu / max(tokens, 1), 2),
            "labelled_share": round(labelled / max(tokens, 1), 3)}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=4, help="rows timed per variant (the first is warm-up)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, (config, checks) = rows_for(args.config, args.steps + 1)
    print(f"{len(rows)} packed rows of up to {config.train.max_seq_len} tokens, dtype {checks.dtype}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'variant':<44}{'forward':>9}{'backward':>10}{'optim':>8}{'step s':>8}{'tok/s':>8}{'cpu s/1k tok':>14}")
    results = {}
    for name, variant in VARIANTS.items():
        r = run_variant(rows, config, checks, variant)
        results[name] = r
        print(f"{name:<44}{r['forward']:>9}{r['backward']:>10}{r['optimizer']:>8}{r['step_s']:>8}{r['tokens_per_s']:>8}"
              f"{r['cpu_s_per_1k_tokens']:>14}",
              flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
