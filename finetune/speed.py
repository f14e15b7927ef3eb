"""The GPU fast path for training (owned by the training-speed work; see docs/training-speed.md).

`finetune/train.py` calls both hooks when CUDA is present; on CPU they change nothing.
"""

from __future__ import annotations

from typing import Any


def training_overrides(config: Any) -> dict[str, Any]:
    """Extra TrainingArguments for the fast path (e.g. fused AdamW); empty on CPU."""
    return {}


def apply_fast_path(model: Any, config: Any) -> Any:
    """Patch the model with fused kernels where CUDA is present; returns the model."""
    return model
