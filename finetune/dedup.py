"""Exact and near-duplicate detection of queries: MinHash over word trigrams with LSH banding.

Small enough to own (about 60 lines) rather than add a dependency: candidates share a band of the
MinHash signature, then the true Jaccard of their trigram sets decides. Deterministic: hashes are
shake_128, not Python's salted `hash`.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable

_WORD = re.compile(r"\w+")
_BANDS, _ROWS = 16, 4  # 64 hashes; pairs at Jaccard 0.7 collide in some band with p > 0.9


def normalize(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, n: int = 3) -> frozenset[str]:
    words = normalize(text).split()
    if len(words) < n:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))


def _hashes(shingle: str) -> list[int]:
    digest = hashlib.shake_128(shingle.encode()).digest(4 * _BANDS * _ROWS)
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, len(digest), 4)]


def signature(sh: frozenset[str]) -> tuple[int, ...]:
    columns = [_hashes(s) for s in sh]
    return tuple(min(col[i] for col in columns) for i in range(_BANDS * _ROWS))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDuplicateIndex:
    """Add texts; ask which earlier text (if any) is at least `threshold` similar."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
        self.sets: list[frozenset[str]] = []
        self.keys: list[str] = []

    def match(self, text: str) -> str | None:
        """Key of a stored text similar to `text`, or None."""
        sh = shingles(text)
        for j in self._candidates(signature(sh)):
            if jaccard(sh, self.sets[j]) >= self.threshold:
                return self.keys[j]
        return None

    def add(self, key: str, text: str) -> None:
        sh = shingles(text)
        sig = signature(sh)
        self.sets.append(sh)
        self.keys.append(key)
        for band in range(_BANDS):
            self.buckets[(band, sig[band * _ROWS:(band + 1) * _ROWS])].append(len(self.sets) - 1)

    def _candidates(self, sig: tuple[int, ...]) -> Iterable[int]:
        seen: set[int] = set()
        for band in range(_BANDS):
            for j in self.buckets.get((band, sig[band * _ROWS:(band + 1) * _ROWS]), ()):
                if j not in seen:
                    seen.add(j)
                    yield j
