"""The dataset card: what went in, what was removed and why, how long the examples are, whose data it is.

Written as card.json (for machines and the run manifest, which stores its hash) and card.md (for
people), with a token-length histogram, lengths.png.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from andini.formats import get_format
from andini.schema import Example
from finetune.config import RunConfig
from finetune.dedup import normalize
from finetune.render import load_tokenizer, render_example


def token_lengths(examples: list[Example], config: RunConfig, tokenizer: Any = None) -> list[int]:
    """Rendered length of each example in the model's tokens."""
    fmt = get_format(config.format_name())
    tokenizer = tokenizer or _cached_tokenizer(config.model.base, fmt.name)
    return [len(render_example(ex, tokenizer, fmt)[0]) for ex in examples]


_TOKENIZERS: dict[tuple[str, str], Any] = {}


def _cached_tokenizer(base: str, fmt_name: str) -> Any:
    if (base, fmt_name) not in _TOKENIZERS:
        _TOKENIZERS[(base, fmt_name)] = load_tokenizer(base, fmt_name)
    return _TOKENIZERS[(base, fmt_name)]


def _distribution(values: list[int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items())}


def _percentiles(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"min": ordered[0], "p50": pick(0.5), "p95": pick(0.95), "max": ordered[-1]}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_card(out: Path, config: RunConfig, splits: dict[str, list[Example]], lengths: dict[str, list[int]],
               builder: Any, heldout_plans: Path | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "config": config.as_dict()["data"],
        "format": config.format_name(),
        "base_model": config.model.base,
        "read_by_source": dict(builder.read),
        "removed": {k: dict(v) for k, v in builder.removed.items()},
        "invalid_total": len(builder.problems),
        "repaired": dict(builder.repaired),
        "splits": {}, "licenses": {},
        "files": {name: file_sha256(out / f"{name}.jsonl") for name in splits},
        "plans_heldout": None,
    }
    if heldout_plans is not None:
        held = builder.heldout_plans
        card["plans_heldout"] = {"path": str(heldout_plans), "sha256": file_sha256(heldout_plans),
                                 "examples": len(held), "goals": len({normalize(e.target_plan.goal) for e in held}),
                                 "by_file": dict(Counter(e.meta["source_file"] for e in held))}
    for name, items in splits.items():
        card["splits"][name] = {
            "examples": len(items),
            "by_source": dict(Counter(e.source for e in items)),
            "tools_per_example": _distribution([len(e.tools) for e in items]),
            "calls_per_example": _distribution([len(e.target_calls) for e in items]),
            "plans": sum(e.target_plan is not None for e in items),
            "irrelevance": sum(bool(e.meta.get("irrelevance")) for e in items),
            "augmented": dict(Counter(k for e in items for k in e.meta.get("augment", [])).most_common()),
            "tokens": _percentiles(lengths[name]),
        }
        for e in items:
            card["licenses"][e.source] = e.license
    (out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    _histogram(out / "lengths.png", lengths)
    (out / "card.md").write_text(card_markdown(card))
    return card


def _histogram(path: Path, lengths: dict[str, list[int]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, values in lengths.items():
        if values:
            ax.hist(values, bins=40, alpha=0.6, label=f"{name} ({len(values)})")
    ax.set_xlabel("tokens per rendered example")
    ax.set_ylabel("examples")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


_AUGMENTS = ("compose_parallel", "compose_multi", "distractors", "irrelevance_removal", "irrelevance_donor",
             "mask_names", "shuffle_arguments", "shuffle_tools")


def card_markdown(card: dict[str, Any]) -> str:
    lines = [f"# Dataset card\n\nFormat `{card['format']}`, base model `{card['base_model']}`.\n",
             "## Splits\n", "| split | examples | by source | plans | irrelevance | tokens p50 / p95 / max |",
             "|---|---|---|---|---|---|"]
    for name, s in card["splits"].items():
        t = s["tokens"]
        by_source = ", ".join(f"{k} {v}" for k, v in sorted(s["by_source"].items()))
        lines.append(f"| {name} | {s['examples']} | {by_source} | {s['plans']} | {s['irrelevance']} | "
                     f"{t.get('p50', '-')} / {t.get('p95', '-')} / {t.get('max', '-')} |")
    if card.get("plans_heldout"):
        h = card["plans_heldout"]
        lines += ["", "## Held-out plan split\n",
                  f"{h['examples']} plan examples ({h['goals']} goals) that no split holds, written to "
                  f"`{h['path']}` for `andini eval plans`. Chosen by a hash of the goal, so a goal posed in "
                  "two files is held out from both."]
    lines += ["", "## Read and removed\n", "| step | detail | count |", "|---|---|---|"]
    for source, n in sorted(card["read_by_source"].items()):
        lines.append(f"| read | {source} | {n} |")
    for step, detail in card["removed"].items():
        for key, n in sorted(detail.items()):
            lines.append(f"| {step} | {key} | {n} |")
    if card.get("repaired"):
        lines += ["", "## Repaired, not dropped\n",
                  "Numbers and booleans written as strings where the schema declares them, converted losslessly "
                  "(`'63'` -> 63), then validated:\n", "| file:type | repairs |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(card["repaired"].items())]
    lines += ["", "## Augmentations (finetune/augment.py)\n", "| split | examples | " +
              " | ".join(_AUGMENTS) + " |", "|---|---|" + "---|" * len(_AUGMENTS)]
    for name, s in card["splits"].items():
        counts = s.get("augmented", {})
        lines.append(f"| {name} | {s['examples']} | " + " | ".join(
            f"{counts.get(k, 0)} ({counts.get(k, 0) / max(s['examples'], 1):.0%})" for k in _AUGMENTS) + " |")
    train = card["splits"].get("train", {})
    lines += ["", "## Shape of the training split\n",
              f"- tools per example: {train.get('tools_per_example')}",
              f"- calls per example: {train.get('calls_per_example')}", "",
              "![token lengths](lengths.png)", "", "## Licenses\n", "| source | license |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(card["licenses"].items())]
    lines += ["", "Invalid records are listed with file, line and field in `problems.jsonl`.", ""]
    return "\n".join(lines)
