"""The GPU fast path for training (measured in docs/training-speed.md; `andini bench train` reruns it).

`finetune/train.py` calls both hooks when CUDA is present; on CPU they change nothing. Each lever was
kept because the benchmark showed it pays on an H100 (docs/training-speed.md has the table):

- Liger Kernel (a maintained library, not kernels of our own): fused RMSNorm, SwiGLU and RoPE, and the
  fused linear cross-entropy where the model computes its own loss from labels.
- Fused AdamW (`optim="adamw_torch_fused"`).
- Activation checkpointing managed here: non-reentrant, optionally on only part of the layers.

Padding-free batches are the other big lever; train.py already packs rows with restarting
position_ids, which transformers' SDPA path turns into a block-diagonal causal mask.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, fields
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FastPathOptions:
    """Switches of the fast path; a config may carry a `fast_path` dict (or bool) to override them."""

    enabled: bool = True  # the whole fast path; False keeps plain transformers + peft
    liger: bool = True  # Liger RMSNorm, SwiGLU, RoPE and fused linear cross-entropy
    fused_adamw: bool = True  # torch's fused AdamW kernel
    checkpoint_fraction: float = 1.0  # share of decoder layers checkpointed when checkpointing is on


def options_from(config: Any) -> FastPathOptions:
    """FastPathOptions from `config.fast_path` (a dict, a bool or absent)."""
    raw = getattr(config, "fast_path", None) if config is not None else None
    if isinstance(raw, FastPathOptions):
        return raw
    if isinstance(raw, bool):
        return FastPathOptions(enabled=raw)
    if isinstance(raw, dict):
        known = {f.name for f in fields(FastPathOptions)}
        unknown = sorted(set(raw) - known)
        if unknown:
            from andini.errors import AndiniError

            raise AndiniError(f"Unknown fast_path option(s): {', '.join(unknown)}.",
                              hint=f"known options: {', '.join(sorted(known))}")
        return FastPathOptions(**raw)
    return FastPathOptions()


def wants_checkpointing(config: Any) -> bool:
    """The run's own choice (`config.train.gradient_checkpointing`), True where the config has none."""
    train = getattr(config, "train", None)
    return bool(getattr(train, "gradient_checkpointing", True))


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def active(config: Any) -> bool:
    """Whether the fast path applies: CUDA present and not switched off in the config."""
    return options_from(config).enabled and cuda_available()


def liger_available() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def training_overrides(config: Any) -> dict[str, Any]:
    """Extra TrainingArguments for the fast path; empty on CPU or when disabled.

    With checkpointing on, the Trainer is told not to enable it: `apply_fast_path` already did, per
    layer and non-reentrant, and the Trainer would redo it on every layer when training starts.
    """
    if not active(config):
        return {}
    overrides: dict[str, Any] = {}
    if options_from(config).fused_adamw:
        overrides["optim"] = "adamw_torch_fused"
    if wants_checkpointing(config):
        overrides["gradient_checkpointing"] = False
    return overrides


def apply_fast_path(model: Any, config: Any) -> Any:
    """Patch the model (a transformers model or a PEFT wrapper of one) where CUDA is present."""
    if not active(config):
        return model
    opts = options_from(config)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if opts.liger:
        apply_liger(base)
    if wants_checkpointing(config):
        enable_checkpointing(base, opts.checkpoint_fraction)
    return model


def apply_liger(model: Any) -> bool:
    """Swap in Liger's fused kernels for this model instance; False (with a log line) when unavailable.

    Liger patches RoPE module-wide for the model's family (e.g. every Mistral in the process).
    """
    if not liger_available():
        log.warning("liger-kernel is not installed: training runs without fused kernels")
        return False
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True,
                                    fused_linear_cross_entropy=True, cross_entropy=False)
    return True


def enable_checkpointing(model: Any, fraction: float = 1.0) -> int:
    """Non-reentrant activation checkpointing on the first `fraction` of decoder layers; returns how many.

    Layers left out keep their activations: less recomputation for the memory they take.
    """
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layers = decoder_layers(model)
    keep = round(len(layers) * max(0.0, min(1.0, fraction)))
    for index, layer in enumerate(layers):
        layer.gradient_checkpointing = index < keep
    return keep


def decoder_layers(model: Any) -> list[Any]:
    """The repeated blocks that carry a `gradient_checkpointing` flag."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
