"""Bounded grammars, measured: (1) the adversarial decoder over every tool schema in ../shared/data and
the plan schema, (2) the real model on BFCL items and CoPlan goals at the default budget, with the
grammar's cost in decode tokens/s against free decoding on the same prompts.

    .venv/bin/python benchmarks/bench_grammar.py --adversary [--limit N] [--shard I/N]  # all without --limit
    .venv/bin/python benchmarks/bench_grammar.py --model [--bfcl 30] [--coplan 5] [--adapter DIR]

Free decoding (no grammar) is cut at `--free-tokens`: only its speed is compared, and an untuned
model's free text can run to any limit.

The adversary is tests/adversary.py: it drives `LocalEngine.decode` (the local backend's loop and
grammar) with logits that never close a string or object while the grammar allows otherwise, or with
seeded random logits. "valid" means the output parses and validates against the original schema.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
BUDGET = 512


def adversary_table(limit: int | None, seed: int, shard: str) -> None:
    from transformers import AutoTokenizer

    from andini.models import model_dir
    from tests import adversary

    tokenizer = AutoTokenizer.from_pretrained(model_dir())
    tools = list(adversary.corpus(DATA))
    if limit:
        tools = random.Random(seed).sample(tools[:-2], min(limit, len(tools) - 2)) + tools[-2:]
    index, count = (int(x) for x in shard.split("/"))
    tools = tools[index::count]
    print(f"{len(tools)} schemas (shard {shard}), budget {BUDGET} tokens\n")
    print("| adversary | schemas | refused | closed in budget | parse + validate | max tokens | mean tokens | s |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("open", "random"):
        eng = adversary.engine(tokenizer, kind, seed=seed)
        start = time.perf_counter()
        outs = [adversary.run(eng, t, BUDGET, kind) for t in tools]
        refused = [o for o in outs if o.error and o.error.startswith("refused")]
        ran = [o for o in outs if o not in refused]
        closed = sum(o.finished and o.tokens <= BUDGET for o in ran)
        valid = sum(o.error is None for o in ran)
        print(f"| {kind} | {len(outs)} | {len(refused)} | {closed}/{len(ran)} | {valid}/{len(ran)} | "
              f"{max(o.tokens for o in ran)} | {statistics.mean(o.tokens for o in ran):.0f} | "
              f"{time.perf_counter() - start:.0f} |")
        for o in [o for o in outs if o.error][:5]:
            print("   ", o)


def model_table(n_bfcl: int, n_coplan: int, adapter: str | None, seed: int, free_tokens: int) -> None:
    from agent.backends import complete
    from eval.plans import read_plan_examples
    from finetune.data import plan_heldout_path
    from finetune.readers import read_examples

    items = []
    for path in sorted((DATA / "bfcl").glob("BFCL_v4_*.json")):
        items += [(path.stem, e) for e in read_examples(path, "bfcl")]
    bfcl = random.Random(seed).sample(items, min(n_bfcl, len(items)))
    # the held-out plan split: goals no training split holds, so the adapter's row is not on its own data
    goals = read_plan_examples(plan_heldout_path()) if n_coplan else []
    coplan = random.Random(seed).sample(goals, min(n_coplan, len(goals)))
    rows = []
    # a call is required (BFCL's irrelevance items left out): the rate is of calls, not of prose
    relevant = [e for c, e in bfcl if "irrelevance" not in c]
    for label, examples, choice in (("BFCL", relevant, "required"), ("CoPlan", coplan, "required")):
        if not examples:
            continue
        for constrained in (True, False):
            outs = [complete(e.messages, e.tools, adapter=adapter, constrained=constrained,
                             max_new_tokens=BUDGET if constrained else free_tokens, tool_choice=choice)
                    for e in examples]
            valid = sum(o.error is None and bool(o.calls) for o in outs)  # a required call, and it validates
            calls = sum(bool(o.calls) for o in outs)
            tokens = sum(max(0, o.new_tokens - 1) for o in outs)
            decode = sum(max(1e-9, o.latency_s - o.ttft_s) for o in outs)
            rows.append((label, "grammar" if constrained else "free", len(outs), valid, calls, tokens / decode,
                         [o.error for o in outs if o.error][:3]))
    print(f"model {'adapter ' + adapter if adapter else 'SmolLM2-135M-Instruct (base)'}, budget {BUDGET} tokens\n")
    print("| items | decoding | n | schema-valid | with a call | decode tok/s | grammar cost |")
    print("|---|---|---|---|---|---|---|")
    for i, (label, mode, n, valid, calls, rate, _) in enumerate(rows):
        free = rows[i + 1][5] if mode == "grammar" else rate
        cost = f"{(1 - rate / free) * 100:+.1f}%" if mode == "grammar" else ""
        print(f"| {label} | {mode} | {n} | {valid}/{n} ({valid / n:.0%}) | {calls} | {rate:.1f} | {cost} |")
    for label, mode, *_, errors in rows:
        if errors:
            print(f"    {label} {mode}: {json.dumps(errors)[:400]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adversary", action="store_true", help="the adversarial decoder over the schemas")
    parser.add_argument("--limit", type=int, help="a seeded sample of this many data schemas (plus the plans)")
    parser.add_argument("--model", action="store_true", help="the real model on BFCL items and CoPlan goals")
    parser.add_argument("--bfcl", type=int, default=30, help="BFCL items (seeded sample over all categories)")
    parser.add_argument("--coplan", type=int, default=5, help="CoPlan goals (seeded sample of the held-out plan split)")
    parser.add_argument("--adapter", help="a LoRA adapter folder on top of the base model")
    parser.add_argument("--shard", default="0/1", help="I/N: every Nth schema from the Ith (to split a long run)")
    parser.add_argument("--free-tokens", type=int, default=64,
                        help="token limit of the free-decoding runs (only their speed is compared)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    if args.adversary:
        adversary_table(args.limit, args.seed, args.shard)
    if args.model:
        model_table(args.bfcl, args.coplan, args.adapter, args.seed, args.free_tokens)
    if not (args.adversary or args.model):
        parser.error("give --adversary and/or --model")


if __name__ == "__main__":
    main()
