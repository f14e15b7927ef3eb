"""Run folders: every evaluation writes one, so a person can read why an item failed and compare runs.

    <runs>/<UTC timestamp>-<kind>-<name>/
        config.json    the resolved configuration (what ran, on what, with which options)
        items.jsonl    one line per item, written as it is scored: prompt, raw output, parsed calls,
                       verdict, error type and reason, latency, tokens
        summary.json   metrics per category and overall, written at the end

Items are appended one by one, so an interrupted run keeps what it had scored.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from andini.settings import BackendName

T = TypeVar("T")
R = TypeVar("R")


class ModelRunConfig(BaseModel):
    """The options every model-scoring run shares: which model, how it decodes, how much, what label."""

    model_config = ConfigDict(extra="forbid")
    backend: BackendName | None = Field(None, description="Model backend (agent.backends.BACKENDS); unset "
                                                         "means the settings' backend.")
    model: str | None = Field(None, description="Model folder or served model id; unset means the default.")
    adapter: str | None = Field(None, description="LoRA adapter folder (local) or served adapter id.")
    constrained: bool = Field(True, description="Constrained decoding from the schemas (local backend).")
    limit: int | None = Field(None, ge=1, description="At most this many items (per category), the first ones.")
    max_new_tokens: int | None = Field(None, ge=1, description="Generation limit per item; unset means settings.")
    name: str | None = Field(None, description="A label for the run; defaults to model, adapter and options.")
    batch: int = Field(1, ge=1, le=256, description="Items asked at once: the local backend decodes them as one "
                                                     "batch, a server gets concurrent requests. Latencies are "
                                                     "then per batch, not per item.")

    def label(self, *suffixes: str) -> str:
        if self.name:
            return self.name
        parts = [Path(self.model).name if self.model else "default",
                 f"+{Path(self.adapter).name}" if self.adapter else "",
                 "" if self.constrained else "-free", *suffixes]
        return "".join(parts)


def runs_root() -> Path:
    """$ANDINI_HOME/runs."""
    from andini.settings import get_settings

    return get_settings().home / "runs"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:60] or "run"


def new_run_dir(kind: str, name: str, out: Path | None = None) -> Path:
    """A fresh folder for one run: `out` itself when given, else a timestamped folder under runs_root()."""
    if out is not None:
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            from andini.errors import AndiniError

            raise AndiniError(f"{path} is not empty; a run never overwrites another.",
                              hint="give a new --out folder or leave --out out")
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = runs_root() / f"{stamp}-{kind}-{_slug(name)}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = runs_root() / f"{stamp}-{kind}-{_slug(name)}-{suffix}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


class RunWriter:
    """Writes one run folder: config first, items as they come, the summary last."""

    def __init__(self, path: Path):
        self.path = path
        self._items = (path / "items.jsonl").open("a", encoding="utf-8")

    def write_config(self, config: dict[str, Any]) -> None:
        (self.path / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False, default=str))

    def add_item(self, record: dict[str, Any]) -> None:
        self._items.write(_dump(record) + "\n")
        self._items.flush()

    def write_summary(self, summary: dict[str, Any]) -> Path:
        self._items.close()
        target = self.path / "summary.json"
        target.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        return target

    def close(self) -> None:
        self._items.close()


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation, as numpy's default does; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def timing_summary(latencies: Sequence[float], new_tokens: Sequence[int]) -> dict[str, float | None]:
    """Latency per item (p50, p95, seconds) and generation speed (new tokens per second of latency)."""
    total_time = sum(latencies)
    return {
        "latency_p50_s": _round(percentile(latencies, 50)),
        "latency_p95_s": _round(percentile(latencies, 95)),
        "tokens_per_s": _round(sum(new_tokens) / total_time) if total_time > 0 else None,
    }


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a rate (successes of n); None when n is 0. Unlike the normal
    approximation it stays inside [0, 1] and is honest at 0/n and n/n, which small runs often hit."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def bootstrap_interval(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """The 95% percentile-bootstrap interval of a mean (items resampled with replacement, seeded so a
    report is reproducible); None for no values. For scores such as ROUGE-L that are not rates."""
    if not values:
        return None
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return round(means[int(0.025 * resamples)], 4), round(means[int(0.975 * resamples) - 1], 4)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def map_in_order(fn: Callable[[T], R], items: list[T], batch: int) -> Iterator[R]:
    """`fn` over `items`, up to `batch` at once (threads: the local engine batches concurrent calls),
    results in the items' order."""
    if batch <= 1:
        yield from map(fn, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(batch) as pool:
        yield from pool.map(fn, items)
