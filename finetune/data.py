"""`andini data build`: sources -> validated, deduplicated, decontaminated, split, mixed JSONL + a card.

Order matters and is fixed: read, repair types losslessly and validate; remove exact and near
duplicates; remove anything too close to an evaluation question; split each source by a stable hash
(turns of one conversation stay together); then mix only the training split (caps, weights,
multi-call weight); augment every split from its own examples (finetune/augment.py: composition,
similar distractors, no-call examples, masking, shuffles); render and drop what is too long.
Before all of that, plan examples whose goal is held out leave for the held-out plan split
(`plan_heldout_path()`), the file `andini eval plans` scores by default: no later step sees them.
Tool descriptions are kept whole: training reads the same tool text that serving and evaluation show.
Every removal and repair is counted in the card: nothing is dropped or changed silently.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from andini.errors import InputError
from andini.schema import Example
from andini.settings import get_settings
from finetune.config import RunConfig
from finetune.dedup import NearDuplicateIndex, normalize
from finetune.readers import read_examples
from finetune.validate import Problem, check_file

SPLITS = ("train", "val", "test")
# Share of CoPlan goals held out. The salt is fixed, not data.seed: every config holds out the same goals,
# so plan scores of adapters built from different configs compare.
PLAN_HELDOUT_FRACTION = 0.2
_PLAN_SALT = "plans-heldout"


def query_text(example: Example) -> str:
    """What a person asked: every user turn, joined."""
    return "\n".join(m.content for m in example.messages if m.role == "user")


def stable_fraction(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by the key and seed: splits and samples never depend on order."""
    digest = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def plan_goal_key(example: Example) -> str | None:
    """The normalized goal of a plan example, else None. Plans split by goal, not by file and line: both
    CoPlan files pose the same 861 goals (one plain, one with a condition), so a split per file would
    train on a goal from one file and score it from the other."""
    return normalize(example.target_plan.goal) if example.target_plan is not None else None


def is_heldout_plan(example: Example) -> bool:
    key = plan_goal_key(example)
    return key is not None and stable_fraction(_PLAN_SALT + ":" + key, 0) < PLAN_HELDOUT_FRACTION


def plan_heldout_path() -> Path:
    """Where `andini data build` writes the held-out plan split and `andini eval plans` reads it."""
    return get_settings().home / "data" / "plans_heldout.jsonl"


def split_key(example: Example) -> str:
    """What keeps examples together in one split: a conversation, a plan goal, or the example itself."""
    if "conversation" in example.meta:
        return example.meta["conversation"]
    key = plan_goal_key(example)
    return "goal:" + key if key is not None else example.id


def explode(example: Example) -> list[Example]:
    """One example per assistant turn: its context is everything before it."""
    turns = [*example.messages, example.target_message()]
    out = []
    for i, m in enumerate(turns):
        if m.role != "assistant" or not any(t.role == "user" for t in turns[:i]):
            continue
        meta = {**example.meta, "conversation": example.id}
        out.append(example.model_copy(update={
            "id": f"{example.id}#{i}", "messages": turns[:i], "target_calls": m.tool_calls,
            "target_text": m.content or None, "target_plan": None if i < len(turns) - 1 else example.target_plan,
            "meta": meta}))
    return out


class Builder:
    """Holds the counts that become the dataset card while examples flow through the steps."""

    def __init__(self, config: RunConfig, strict: bool = False):
        self.config, self.strict = config, strict
        self.removed: dict[str, Counter] = defaultdict(Counter)
        self.problems: list[Problem] = []
        self.read: Counter = Counter()
        self.repaired: Counter = Counter()
        self.heldout_plans: list[Example] = []

    def read_sources(self) -> list[Example]:
        examples: list[Example] = []
        for source in self.config.data.sources:
            path = self.config.data_path(source.path)
            for example, problem in check_file(path, source.format, strict=self.strict,
                                               repair=self.config.data.repair_types):
                if problem is not None or example is None:  # one of the two is set
                    if problem is not None:
                        self.problems.append(problem)
                        self.removed["invalid"][problem.kind] += 1
                    continue
                self.repaired.update({f"{path.name}:{k}": v for k, v in example.meta.get("repaired", {}).items()})
                self.repaired["examples"] += bool(example.meta.get("repaired"))
                example.meta["source_file"] = path.name
                parts = explode(example) if source.explode else [example]
                self.read[example.source] += len(parts)
                examples.extend(parts)
        return examples

    def hold_out_plans(self, examples: list[Example]) -> list[Example]:
        """Plan examples whose goal is held out leave here, before any other step reads them."""
        kept = []
        for ex in examples:
            if is_heldout_plan(ex):
                self.heldout_plans.append(ex)
                self.removed["plan_heldout"][ex.meta["source_file"]] += 1
            else:
                kept.append(ex)
        return kept

    def deduplicate(self, examples: list[Example]) -> list[Example]:
        exact: set[str] = set()
        near = NearDuplicateIndex(self.config.data.near_dup_threshold)
        kept = []
        for ex in examples:
            target = ex.target_message().model_dump_json()
            key = normalize(query_text(ex)) + "\x00" + target + "\x00" + str(len(ex.messages))
            if key in exact:
                self.removed["duplicate"]["exact"] += 1
                continue
            exact.add(key)
            conversation = ex.meta.get("conversation", ex.id)
            if "conversation" not in ex.meta:  # turns of one conversation share their first query
                match = near.match(query_text(ex) + " " + target)
                if match is not None and match != conversation:
                    self.removed["duplicate"]["near"] += 1
                    continue
                near.add(conversation, query_text(ex) + " " + target)
            kept.append(ex)
        return kept

    def decontaminate(self, examples: list[Example]) -> list[Example]:
        index = NearDuplicateIndex(self.config.data.decontam_threshold)
        exact: dict[str, str] = {}
        for spec in self.config.data.eval_files:
            path = self.config.data_path(spec.path)
            for ex in read_examples(path, spec.format):
                exact.setdefault(normalize(query_text(ex)), path.name)
                index.add(path.name, query_text(ex))
        # Near copies of a held-out goal go too. Goals, not prompts: the shared "Make a step-by-step plan
        # to" would make distinct short goals look alike.
        goals = NearDuplicateIndex(self.config.data.decontam_threshold)
        for ex in self.heldout_plans:
            goals.add("plans_heldout", plan_goal_key(ex) or "")
        kept = []
        for ex in examples:
            text = query_text(ex)
            goal = plan_goal_key(ex)
            hit = exact.get(normalize(text)) or index.match(text) or (goal is not None and goals.match(goal))
            if hit:
                self.removed["decontaminated"][hit] += 1
            else:
                kept.append(ex)
        return kept

    def split(self, examples: list[Example]) -> dict[str, list[Example]]:
        data = self.config.data
        out: dict[str, list[Example]] = {name: [] for name in SPLITS}
        for ex in examples:
            u = stable_fraction(split_key(ex), data.seed)
            name = "test" if u < data.test_fraction else "val" if u < data.test_fraction + data.val_fraction else "train"
            out[name].append(ex)
        return out

    def cap(self, examples: list[Example]) -> list[Example]:
        """At most `cap` examples (whole conversations) per source, chosen by stable hash, before the split
        so that every split keeps the source's share."""
        seed = self.config.data.seed
        caps = {self.config.data_path(s.path).name: s.cap for s in self.config.data.sources}
        order = sorted(examples, key=lambda e: stable_fraction("cap:" + e.meta.get("conversation", e.id), seed))
        taken: Counter = Counter()
        dropped: set[int] = set()
        for ex in order:
            name = ex.meta["source_file"]
            cap = caps.get(name)
            if cap is not None and taken[name] >= cap:
                self.removed["capped"][name] += 1
                dropped.add(id(ex))
            else:
                taken[name] += 1
        return [ex for ex in examples if id(ex) not in dropped]

    def mix(self, train: list[Example]) -> list[Example]:
        data = self.config.data
        by_source: dict[str, list[Example]] = defaultdict(list)
        for ex in train:
            by_source[ex.meta["source_file"]].append(ex)
        mixed = []
        for source in data.sources:
            name = self.config.data_path(source.path).name
            pool = sorted(by_source.pop(name, []), key=lambda e: stable_fraction(e.id, data.seed))
            for ex in pool:
                weight = source.weight * (data.multi_call_weight if len(ex.target_calls) > 1 else 1.0)
                copies = int(weight) + (stable_fraction("w" + ex.id, data.seed) < weight % 1)
                if copies == 0:
                    self.removed["weighted_out"][name] += 1
                mixed.extend([ex] * copies)
        rng = random.Random(data.seed)
        rng.shuffle(mixed)
        return mixed


def fits_budget(config: RunConfig) -> Callable[[Example], bool]:
    """The build's one length rule, for one example at a time (while augmenting)."""
    from finetune.card import token_lengths

    return lambda ex: within_budget(token_lengths([ex], config)[0], config)


def within_budget(length: int, config: RunConfig) -> bool:
    return length <= config.data.max_tokens


def drop_long(examples: list[Example], config: RunConfig, builder: Builder,
              step: str) -> tuple[list[Example], list[int]]:
    """The examples that fit and their lengths (rendered once); the others are counted under too_long.<step>."""
    from finetune.card import token_lengths

    kept, lengths = [], []
    for ex, n in zip(examples, token_lengths(examples, config), strict=True):
        if within_budget(n, config):
            kept.append(ex)
            lengths.append(n)
        else:
            builder.removed["too_long"][step] += 1
    return kept, lengths


def build(config: RunConfig, strict: bool = False, progress=print) -> dict[str, Any]:
    """Run every step; write out/{train,val,test}.jsonl, card.md, card.json, lengths.png, problems.jsonl."""
    from finetune.augment import augment_split
    from finetune.card import write_card

    data = config.data
    builder = Builder(config, strict=strict)
    examples = builder.hold_out_plans(builder.read_sources())
    progress(f"read {len(examples) + len(builder.heldout_plans)} examples, {len(builder.problems)} invalid, "
             f"{len(builder.heldout_plans)} plans held out")
    examples = builder.cap(builder.decontaminate(builder.deduplicate(drop_long(examples, config, builder, "read")[0])))
    splits = builder.split(examples)
    splits["train"] = builder.mix(splits["train"])
    fits = fits_budget(config)
    for name in SPLITS:
        splits[name] = augment_split(splits[name], data, builder.removed["augment_invalid"], fits)
    lengths: dict[str, list[int]] = {}
    for name in SPLITS:  # composition made some longer
        splits[name], lengths[name] = drop_long(splits[name], config, builder, name)
    out = Path(data.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for ex in splits[name]:
                fh.write(ex.model_dump_json(exclude_defaults=True) + "\n")
    with (out / "problems.jsonl").open("w", encoding="utf-8") as fh:
        for problem in builder.problems:
            fh.write(problem.model_dump_json() + "\n")
    heldout = write_heldout_plans(builder.heldout_plans) if builder.heldout_plans else None
    card = write_card(out, config, splits, lengths, builder, heldout)
    progress(f"wrote {out}: " + ", ".join(f"{n} {len(splits[n])}" for n in SPLITS))
    return card


def write_heldout_plans(examples: list[Example]) -> Path:
    """The held-out plan split, as andini JSONL (the prompt with `make_plan` offered, and the human plan)."""
    path = plan_heldout_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(ex.model_dump_json(exclude_defaults=True) + "\n")
    tmp.replace(path)  # an evaluation reading it meanwhile sees the old file or the new, never half
    return path


def load_split(out: Path | str, name: str) -> list[Example]:
    path = Path(out) / f"{name}.jsonl"
    if not path.exists():
        raise InputError(f"no {name} split", path=path, hint="run `andini data build CONFIG.yaml` first")
    return list(read_examples(path, "andini"))
