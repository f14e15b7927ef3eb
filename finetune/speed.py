"""The GPU fast path for training (measured in docs/training-speed.md; `andini bench train` reruns it).

`finetune/train.py` calls both hooks when CUDA is present; on CPU they change nothing. What the fast
path does, each lever kept because the benchmark showed it pays:

- Liger Kernel (a maintained library, not our own kernels): fused RMSNorm, SwiGLU, RoPE and the fused
  linear cross-entropy that never materialises the [tokens, vocab] logits.
- Fused AdamW (`optim="adamw_torch_fused"`).
- Activation checkpointing managed here, non-reentrant and optionally on only part of the layers.
- Padding-free batches: `make_collator` flattens a micro-batch into one row with `position_ids` that
  restart per example. transformers turns those into a block-diagonal causal mask, so examples never
  attend to each other; `flex_attention` skips the masked blocks instead of computing them.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, fields
from typing import Any

log = logging.getLogger(__name__)

#: transformers attention backend for packed rows: skips masked blocks, unlike SDPA with a dense mask.
PACKED_ATTENTION = "flex_attention"


@dataclass(frozen=True)
class FastPathOptions:
    """Switches of the fast path; a config may carry a `fast_path` dict to override any of them."""

    enabled: bool = True  # the whole fast path; False keeps plain transformers + peft
    liger: bool = True  # Liger RMSNorm, SwiGLU, RoPE and fused linear cross-entropy
    fused_adamw: bool = True  # torch's fused AdamW kernel
    checkpointing: bool = True  # activation checkpointing (non-reentrant)
    checkpoint_fraction: float = 1.0  # share of decoder layers checkpointed; the rest keep activations
    attention: str | None = PACKED_ATTENTION  # attention backend to set; None leaves the model's


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


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def liger_available() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def training_overrides(config: Any) -> dict[str, Any]:
    """Extra TrainingArguments for the fast path; empty on CPU or when disabled.

    Checkpointing is switched off in the Trainer because `apply_fast_path` manages it per layer
    (the Trainer would otherwise re-enable it on every layer when training starts).
    """
    opts = options_from(config)
    if not (opts.enabled and cuda_available()):
        return {}
    overrides: dict[str, Any] = {"gradient_checkpointing": False, "bf16": True}
    if opts.fused_adamw:
        overrides["optim"] = "adamw_torch_fused"
    return overrides


def apply_fast_path(model: Any, config: Any) -> Any:
    """Patch the model (a transformers model or a PEFT wrapper of one) where CUDA is present."""
    opts = options_from(config)
    if not (opts.enabled and cuda_available()):
        return model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if opts.liger:
        apply_liger(base)
    if opts.attention:
        base.set_attn_implementation(opts.attention)
    if opts.checkpointing:
        enable_checkpointing(base, opts.checkpoint_fraction)
    return model


def apply_liger(model: Any) -> bool:
    """Swap in Liger's fused kernels for this model instance; False (with a log line) when unavailable."""
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


def make_collator(config: Any = None) -> Any:
    """The padding-free collator for the fast path; None on CPU or when disabled (pad as usual)."""
    opts = options_from(config)
    if not (opts.enabled and cuda_available()):
        return None
    from transformers import DataCollatorWithFlattening

    return DataCollatorWithFlattening(return_position_ids=True)
