"""Field-level match of a generated document against a reference: both flattened to leaves, each leaf a
(JSON pointer, value) pair, compared as multisets. Strings compare after the leaderboard's
normalisation (`andini.calls.canonical_value`: case, spaces and `,./-_*^` ignored) and 5 == 5.0, so a
field counts as matched when its place and its value agree.

    precision = matched leaves / leaves generated;  recall = matched / leaves in the reference
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from andini.calls import canonical_value
from andini.docschema import pointer


class FieldMatch(BaseModel):
    matched: int = Field(description="Leaves with the same place and value in both.")
    generated: int = Field(description="Leaves in the generated document.")
    expected: int = Field(description="Leaves in the reference.")

    @property
    def precision(self) -> float:
        return self.matched / self.generated if self.generated else float(self.expected == 0)

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def leaves(document: Any, at: tuple = ()) -> list[tuple[str, str]]:
    """(pointer, canonical value as JSON) for each leaf; an empty object or list is a leaf itself."""
    if isinstance(document, dict) and document:
        return [leaf for key, value in document.items() for leaf in leaves(value, (*at, key))]
    if isinstance(document, list) and document:
        return [leaf for i, value in enumerate(document) for leaf in leaves(value, (*at, i))]
    return [(pointer(list(at)), json.dumps(canonical_value(document), sort_keys=True))]


def match_document(generated: Any, reference: Any) -> FieldMatch:
    """How many of the reference's fields the generated document has, at the same place, with the same
    value. A document that is None (none was produced) matches nothing."""
    want = Counter(leaves(reference))
    got = Counter(leaves(generated)) if generated is not None else Counter()
    return FieldMatch(matched=sum((want & got).values()), generated=sum(got.values()), expected=sum(want.values()))
