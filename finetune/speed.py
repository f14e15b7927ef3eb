"""The GPU fast path for training (measured in docs/training-speed.md; `andini bench train` reruns it).

`finetune/train.py` calls `apply_memory_class` on every config and the two hooks when CUDA is present;
on CPU the hooks change nothing. The levers, each measured one at a time in docs/training-speed.md:

- Memory classes by name (`train.memory: 24gb | 12gb | max`): micro-batch tokens, QLoRA and the
  checkpointing policy sized to a card, keeping the run's examples per optimizer step.
- Selective activation checkpointing: keep the matrix products' and attention's outputs, recompute
  only the cheap elementwise work (torch.utils.checkpoint's selective contexts).
- torch.compile of each decoder layer (fuses the norms, RoPE, SwiGLU and the LoRA adds).
- Liger Kernel (a maintained library): fused RMSNorm, SwiGLU and RoPE.
- Fused AdamW (`optim="adamw_torch_fused"`).

Packed rows run a flash kernel with no mask through `finetune.varlen`.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)


class FastPathOptions(BaseModel):
    """Switches of the fast path (the config's `fast_path`, or `fast_path: false` for none of it).
    Unknown keys are errors; the keys a config set are kept apart from defaults (`model_fields_set`),
    so a memory class's choices apply only where the config said nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="The whole fast path; False keeps plain transformers + peft.")
    liger: bool = Field(True, description="Liger RMSNorm, SwiGLU and RoPE.")
    fused_adamw: bool = Field(True, description="torch's fused AdamW kernel.")
    checkpoint_fraction: float = Field(1.0, ge=0, le=1, description="Share of decoder layers checkpointed "
                                                                    "when checkpointing is on.")
    checkpoint_policy: Literal["full", "save-matmuls"] = Field(
        "full", description="full: recompute the layer; save-matmuls: recompute elementwise work only.")
    compile: bool = Field(False, description="torch.compile each decoder layer.")
    lora_input_as_is: bool = Field(
        False, description="LoRA reads the bf16 input as it is, and autocast casts the small fp32 LoRA "
                           "weights; peft's default casts every projection's input to fp32 first. Off "
                           "until measured on a GPU (docs/training-speed.md).")

    @classmethod
    def parse(cls, raw: Any) -> FastPathOptions:
        """From a config value: these options, a bool (the whole fast path on or off), a mapping or None."""
        if isinstance(raw, FastPathOptions):
            return raw
        if raw is None:
            return cls()
        if isinstance(raw, bool):
            return cls(enabled=raw)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            from andini.errors import AndiniError

            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise AndiniError(f"fast_path.{key}: {err['msg']}",
                              hint=f"known options: {', '.join(cls.model_fields)}") from exc

    def merged(self, overrides: dict[str, Any]) -> FastPathOptions:
        """These options with `overrides` applied (validated), keeping track of what was set."""
        return FastPathOptions.parse({**self.model_dump(exclude_unset=True), **overrides})


@dataclass(frozen=True)
class MemoryClass:
    """What `train.memory` sets: sized on one H200 with Mistral-7B (docs/training-speed.md)."""

    tokens: int  # tokens per micro-batch (rows of train.max_seq_len)
    quantization: str  # none | 4bit
    gradient_checkpointing: bool
    fast_path: dict[str, Any]  # FastPathOptions keys; the config's own fast_path keys win


MEMORY_CLASSES: dict[str, MemoryClass] = {
    # Measured through `andini bench train` on one H200 (docs/training-speed.md): 21.5 GiB peak
    "24gb": MemoryClass(12288, "none", True, {}),
    # 8.5 GiB peak; 4,096 tokens fit 8.1 GiB but run at half the speed (dequantising is per step)
    "12gb": MemoryClass(8192, "4bit", True, {}),
    # No checkpointing: 8,192 tokens fit an 80 GB card; 12,288 are 5% faster on the H200 (84 GiB)
    "max": MemoryClass(8192, "none", False, {}),
}


def apply_memory_class(config: Any) -> Any:
    """The config with its memory class's settings; unchanged without `train.memory`.

    Micro-batches get the class's token budget; gradient accumulation changes so that an optimizer
    step still sees about as many rows as the config asked for (the recipe stays the same).
    """
    from dataclasses import replace

    name = getattr(config.train, "memory", None)
    if name is None:
        return config
    cls = MEMORY_CLASSES[name]
    t = config.train
    rows = max(1, cls.tokens // t.max_seq_len)
    accum = max(1, round(t.batch_size * t.grad_accum / rows))
    train = replace(t, batch_size=rows, grad_accum=accum, quantization=cls.quantization,
                    gradient_checkpointing=cls.gradient_checkpointing)
    own = FastPathOptions.parse(config.fast_path)
    fast = FastPathOptions.parse({**cls.fast_path, **own.model_dump(exclude_unset=True)})
    return replace(config, train=train, fast_path=fast)


def options_from(config: Any) -> FastPathOptions:
    """The fast-path options of a config (a RunConfig holds them typed; None: the defaults)."""
    return FastPathOptions.parse(getattr(config, "fast_path", None) if config is not None else None)


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
        enable_checkpointing(base, opts.checkpoint_fraction, opts.checkpoint_policy)
    if opts.compile:
        for layer in decoder_layers(base):  # compiled at the first call, after peft added its layers
            layer.compile(dynamic=True)
    return model


def apply_to_adapter(model: Any, config: Any) -> Any:
    """Patch the PEFT wrapper once its LoRA layers exist; unchanged on CPU or when disabled."""
    if active(config) and options_from(config).lora_input_as_is:
        read_lora_input_as_is(model)
    return model


def read_lora_input_as_is(model: Any, as_is: bool = True) -> int:
    """Stop (or, with as_is False, restore) peft casting each LoRA layer's input to its weights'
    dtype; the number of LoRA layers. Only for autocast: without it a bf16 input meets fp32 weights.

    peft keeps LoRA weights in fp32 and casts every projection's bf16 input to fp32, a full copy of
    the activations per projection that autocast then casts back for the product (17% of a step's
    device time on the H200, docs/training-speed.md). Under autocast, which the Trainer's bf16 runs,
    the product casts the r x d weights instead; the master weights and their updates stay fp32.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    for layer in layers:
        layer.cast_input_dtype_enabled = not as_is  # type: ignore[attr-defined]  # set in LoraLayer
    return len(layers)


def apply_liger(model: Any) -> bool:
    """Swap in Liger's fused kernels for this model instance; False (with a log line) when unavailable.

    Liger patches RoPE module-wide for the model's family (e.g. every Mistral in the process).
    """
    if not liger_available():
        log.warning("liger-kernel is not installed: training runs without fused kernels")
        return False
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    # train.py computes its loss at labelled positions itself, so Liger's loss forward stays out
    _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True,
                                    fused_linear_cross_entropy=False, cross_entropy=False)
    return True


def enable_checkpointing(model: Any, fraction: float = 1.0, policy: str = "full") -> int:
    """Non-reentrant activation checkpointing on the first `fraction` of decoder layers; returns how many.

    Layers left out keep their activations: less recomputation for the memory they take. With
    policy "save-matmuls" the checkpointed layers keep their matrix products' and attention's outputs
    and recompute only elementwise work (norms, RoPE, SwiGLU, LoRA adds) in the backward pass.
    """
    kwargs: dict[str, Any] = {"use_reentrant": False}
    if policy == "save-matmuls":
        kwargs["context_fn"] = save_matmuls_context()
    elif policy != "full":
        from andini.errors import AndiniError

        raise AndiniError(f"Unknown checkpoint_policy {policy!r}.", hint="use full or save-matmuls")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    layers = decoder_layers(model)
    keep = round(len(layers) * max(0.0, min(1.0, fraction)))
    for index, layer in enumerate(layers):
        layer.gradient_checkpointing = index < keep
    return keep


def decoder_layers(model: Any) -> list[Any]:
    """The repeated blocks that carry a `gradient_checkpointing` flag."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


#: Ops whose outputs selective checkpointing keeps (str(op) of the OpOverload); the rest is recomputed.
SAVED_OPS = frozenset({"aten.mm.default", "aten.addmm.default", "aten.bmm.default",
                       "torch_attn._varlen_attn.default", "aten._scaled_dot_product_flash_attention.default",
                       "aten._scaled_dot_product_efficient_attention.default",
                       "aten._scaled_dot_product_cudnn_attention.default"})


def save_matmuls_context() -> Any:
    """A `context_fn` for torch.utils.checkpoint: save the SAVED_OPS outputs, recompute everything else."""
    import functools

    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    def policy(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> Any:
        return CheckpointPolicy.MUST_SAVE if str(op) in SAVED_OPS else CheckpointPolicy.PREFER_RECOMPUTE

    return functools.partial(create_selective_checkpoint_contexts, policy)
