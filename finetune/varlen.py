"""Packed examples that never attend to each other, through a flash kernel.

`train.PackedCollator` flattens a batch of packed rows into one sequence and passes the cumulative
example lengths under the names transformers' flash-attention path uses (`cu_seq_lens_q/k`,
`max_length_q/k`); the model's forward hands them to every attention call. `varlen_attention`,
registered with transformers' AttentionInterface as "andini_varlen", runs
`torch.nn.attention.varlen.varlen_attn` on them: FlashAttention over the packed tokens, causal within
each example, with no mask materialised and no padding. Where that kernel cannot run (CPU, fp32) it
runs SDPA example by example, the same function. Without the lengths (generation, a plain forward) it
is transformers' SDPA. The name has no mask function on purpose: transformers then builds no
block-diagonal mask from the position_ids.
"""

from __future__ import annotations

import inspect
from typing import Any

NAME = "andini_varlen"
LENGTH_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


def register() -> str:
    """Make "andini_varlen" an attention implementation transformers accepts; returns the name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, varlen_attention)
    return NAME


def use(model: Any, implementation: str) -> None:
    """Switch a model (or a PEFT wrapper of one) to `implementation`, e.g. back to "sdpa" for generation."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if implementation == NAME:
        register()
    base.set_attn_implementation(implementation)


def sequence_lengths(position_ids: list[int]) -> dict[str, Any]:
    """The varlen keyword arguments for one flattened row whose positions restart at each example."""
    import torch

    starts = [i for i, p in enumerate(position_ids) if p == 0]
    if not starts or starts[0] != 0:
        raise ValueError("a packed row must start an example at its first position (position_ids[0] == 0)")
    bounds = [*starts, len(position_ids)]
    longest = max(b - a for a, b in zip(bounds, bounds[1:], strict=False))
    cu = torch.tensor(bounds, dtype=torch.int32)
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def varlen_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                     dropout: float = 0.0, scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers' attention signature: (batch, heads, tokens, dim) in, (batch, tokens, heads, dim) out."""
    import torch

    cu = kwargs.pop("cu_seq_lens_q", None)
    longest = kwargs.pop("max_length_q", None)
    for extra in ("cu_seq_lens_k", "max_length_k"):
        kwargs.pop(extra, None)
    if cu is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if dropout:
        raise ValueError("andini_varlen attention has no dropout; set the model's attention_dropout to 0")
    batch, heads, tokens, dim = query.shape
    if batch != 1:
        raise ValueError(f"varlen attention takes one flattened row, got a batch of {batch}")
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (tokens, heads, dim)
    if flash_ok(q):
        out = _flash(q, k, v, cu.to(device=q.device, dtype=torch.int32), int(longest), scaling)
    else:
        out = _per_example(q, k, v, cu.tolist(), scaling)
    return out.unsqueeze(0), None


def flash_ok(query: Any) -> bool:
    """Whether torch's varlen flash kernel can take this tensor (CUDA, half precision)."""
    import torch

    return query.is_cuda and query.dtype in (torch.bfloat16, torch.float16) and _varlen() is not None


def _varlen() -> Any:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def _flash(q: Any, k: Any, v: Any, cu: Any, longest: int, scaling: float | None) -> Any:
    varlen_attn = _varlen()
    groups = q.shape[1] // k.shape[1]
    extra: dict[str, Any] = {}
    if groups > 1:
        if "enable_gqa" in inspect.signature(varlen_attn).parameters:
            extra["enable_gqa"] = True
        else:  # torch 2.11 has no enable_gqa: repeat each kv head for its query heads, as repeat_kv does
            k, v = (t.repeat_interleave(groups, dim=1) for t in (k, v))
    return varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, longest, longest, scale=scaling,
                       window_size=(-1, 0), **extra)


def _per_example(q: Any, k: Any, v: Any, bounds: list[int], scaling: float | None) -> Any:
    """The reference: causal SDPA on each example alone (tokens, heads, dim)."""
    import torch
    import torch.nn.functional as F

    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k, v = (t.repeat_interleave(groups, dim=1) for t in (k, v))
    parts = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        qs, ks, vs = (t[start:end].transpose(0, 1) for t in (q, k, v))  # (heads, len, dim)
        parts.append(F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scaling).transpose(0, 1))
    return torch.cat(parts, dim=0)
