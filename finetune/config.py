"""The one config file of a fine-tuning run: data, model, LoRA, training.

Dataclasses whose fields carry their help text (like TRL's SFTConfig), validated by pydantic so that a
typo or a wrong type is an error naming the key before any long work starts. `andini finetune` saves
the resolved config beside the adapter.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass

from andini.errors import InputError
from andini.formats import FormatName, detect_format
from finetune.speed import FastPathOptions

_STRICT = ConfigDict(extra="forbid")


@dataclass(config=_STRICT)
class SourceConfig:
    """One input data set."""

    path: str = Field(description="File to read; relative paths are under data.root.")
    format: Literal["bfcl", "openai", "sharegpt", "glaive", "seal", "nestful", "coplan", "andini"] = Field(
        description="Reader to use (see finetune.readers.FORMATS).")
    weight: float = Field(default=1.0, ge=0, description="Sampling weight in the training mix: 2.0 repeats each example "
                                                 "twice, 0.5 keeps half (deterministically).")
    cap: int | None = Field(default=None, ge=0, description="At most this many examples from this source, taken "
                                                    "before the split so every split keeps its share.")
    explode: bool = Field(default=False, description="One example per assistant turn (short, single-step targets) "
                                             "instead of one per conversation.")


@dataclass(config=_STRICT)
class EvalFileConfig:
    """An evaluation file whose questions must not appear in training data."""

    path: str = Field(description="Evaluation file; relative paths are under data.root.")
    format: str = Field(default="bfcl", description="Its reader format.")


@dataclass(config=_STRICT)
class AugmentConfig:
    """Augmentations of each split (finetune/augment.py). Shares are of the split's examples."""

    compose_parallel: float = Field(default=0.0, ge=0, le=2, description="Add this share of requests composed of 2-3 "
                                                                 "single-call examples of one function.")
    compose_multi: float = Field(default=0.0, ge=0, le=2, description="Add this share composed of single-call examples "
                                                              "of different functions.")
    irrelevance_removal: float = Field(default=0.0, ge=0, le=1, description="Add this share of no-call examples made by "
                                                                    "removing the called tools (the rest kept).")
    mask_names: float = Field(default=0.0, ge=0, le=1, description="Share of examples whose function and parameter names "
                                                           "are replaced by random ones.")
    shuffle_arguments: float = Field(default=0.0, ge=0, le=1, description="Share whose parameters are listed (and "
                                                                  "the target's arguments written) in another order.")
    shuffle_tools: float = Field(default=0.0, ge=0, le=1, description="Share whose offered tools are put in another order.")
    distractor_candidates: int = Field(default=6, ge=1, description="Distractors are drawn from this many most similar tools.")


@dataclass(config=_STRICT)
class DataConfig:
    """`andini data build`: sources -> validated, deduplicated, decontaminated splits and a card."""

    sources: list[SourceConfig] = Field(description="Data sets to read.")
    out: str = Field(default="artifacts/data", description="Folder for train/val/test JSONL and the dataset card "
                                                   "(relative to the working directory).")
    root: str = Field(default=".", description="Base folder for relative source paths, relative to the config file. "
                                       "The environment variable ANDINI_SHARED_DATA overrides it.")
    eval_files: list[EvalFileConfig] = Field(default_factory=list,
                                             description="Decontaminate against these evaluation sets.")
    val_fraction: float = Field(default=0.05, ge=0, lt=0.5, description="Share of each source for validation.")
    test_fraction: float = Field(default=0.05, ge=0, lt=0.5, description="Share of each source held out for testing.")
    seed: int = Field(default=0, description="Seed of every sampling decision (splits are hash-based and stable).")
    near_dup_threshold: float = Field(default=0.8, gt=0, le=1, description="Word-trigram Jaccard at or above which two "
                                                                  "queries are near duplicates.")
    decontam_threshold: float = Field(default=0.7, gt=0, le=1, description="Jaccard to an eval query at or above "
                                                                  "which a training example is removed.")
    irrelevance_fraction: float = Field(default=0.1, ge=0, le=1, description="Add this share of examples whose offered "
                                                                     "tools don't fit (the answer is text).")
    multi_call_weight: float = Field(default=1.0, ge=0, description="Extra weight of examples with 2+ calls.")
    distractor_tools: int = Field(default=0, ge=0, description="Offer this many extra tools, the most similar to the called "
                                                       "ones, so the model must choose (Seal/NESTFUL offer only the called ones).")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="Augmentations (finetune/augment.py).")
    repair_types: bool = Field(default=True, description="Un-string numbers and booleans where the schema declares them "
                                                 "(lossless; counted in the card) instead of dropping the example.")
    max_tokens: int = Field(default=2048, ge=16, description="Drop rendered examples longer than this (counted in the card).")


@dataclass(config=_STRICT)
class ModelConfig:
    """The base model and its chat format."""

    base: str = Field(default="smollm2-135m-instruct", description="Local model folder (save_pretrained layout) or "
                                                          "'smollm2-135m-instruct', the embedded default.")
    format: Literal["auto", "chatml", "mistral"] = Field(default="auto", description="Chat format; 'auto' reads it "
                                                         "from the checkpoint's tokenizer and config "
                                                         "(andini.formats.detect_format).")


@dataclass(config=_STRICT)
class LoraConfig:
    """The LoRA adapter."""

    r: int = Field(default=16, ge=1, description="Rank.")
    alpha: int = Field(default=32, ge=1, description="Scaling numerator (scale = alpha / r).")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(default="all-linear", description="Module names to adapt.")
    top_layers: float = Field(default=1.0, gt=0, le=1, description="Adapt only this top share of the decoder "
                              "layers. Backpropagation then stops below the lowest adapted layer, which on a CPU "
                              "saves that share of the backward pass (benchmarks/bench_cpu_step.py).")


@dataclass(config=_STRICT)
class TrainConfig:
    """The optimisation loop (transformers Trainer)."""

    output_dir: str = Field(default="artifacts/adapter", description="Adapter, checkpoints and manifest go here.")
    epochs: float = Field(default=1.0, gt=0, description="Passes over the training split.")
    max_steps: int = Field(default=-1, description="Stop after this many optimizer steps (-1: use epochs).")
    learning_rate: float = Field(default=2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: str = Field(default="cosine", description="transformers scheduler name: cosine, linear, constant, ...")
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1, description="Share of steps spent warming up.")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    batch_size: int = Field(default=4, ge=1, description="Rows per device per step (a row is one packed sequence).")
    grad_accum: int = Field(default=1, ge=1, description="Steps accumulated per optimizer step.")
    max_seq_len: int = Field(default=1024, ge=16, description="Tokens per row; examples are packed up to it.")
    packing: bool = Field(default=True, description="Pack several examples per row; position_ids restart per example "
                                            "so examples never attend to each other.")
    gradient_checkpointing: bool = Field(default=False, description="Trade compute for activation memory.")
    memory: Literal["24gb", "12gb", "max"] | None = Field(default=None, description="GPU memory class: sets tokens per "
                                                         "micro-batch, QLoRA and checkpointing for a 24 GB card, "
                                                         "a 12 GB card (QLoRA) or all of a large one "
                                                         "(finetune.speed.MEMORY_CLASSES); None: as configured.")
    precision: Literal["auto", "bf16", "fp32"] = Field(default="auto", description="auto: bf16 where the hardware "
                                                                           "computes it natively.")
    quantization: Literal["none", "4bit"] = Field(default="none", description="4bit = QLoRA via bitsandbytes (CUDA only).")
    eval_steps: int = Field(default=50, ge=1, description="Evaluate on the validation split every N steps.")
    save_steps: int = Field(default=50, ge=1, description="Checkpoint every N steps (resume picks the latest).")
    save_total_limit: int = Field(default=2, ge=1, description="Checkpoints kept.")
    early_stopping_patience: int | None = Field(default=3, ge=1, description="Stop after N evaluations without "
                                                                     "improvement (None: never).")
    logging_steps: int = Field(default=5, ge=1, description="Log loss and throughput every N steps.")
    seed: int = Field(default=0, description="Training seed.")
    threads: int | None = Field(default=None, ge=1, description="CPU threads for torch (None: torch's default).")
    max_val_examples: int = Field(default=200, ge=1, description="Cap on validation examples evaluated for loss.")
    quality_examples: int = Field(default=0, ge=0, description="After training, score this many held-out test "
                                                       "examples with the base model and the adapter.")


@dataclass(config=_STRICT)
class RunConfig:
    """A whole fine-tuning run."""

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    fast_path: FastPathOptions = Field(default_factory=FastPathOptions,
                                       description="GPU fast-path switches (finetune.speed.FastPathOptions; "
                                                   "`false` turns it all off); ignored without CUDA.")
    path: str | None = Field(default=None, description="The file this config was read from (set by load_config).")

    @field_validator("fast_path", mode="before")
    @classmethod
    def _fast_path(cls, value: Any) -> Any:
        """`fast_path: false` / `true` / absent mean the whole fast path off / on (defaults)."""
        if value is None:
            return FastPathOptions()
        return FastPathOptions(enabled=value) if isinstance(value, bool) else value

    def as_dict(self) -> dict[str, Any]:
        return TypeAdapter(RunConfig).dump_python(self, mode="json")

    def data_path(self, relative: str) -> Path:
        """A source or eval path resolved under data.root."""
        import os

        path = Path(relative).expanduser()
        if path.is_absolute():
            return path
        root = os.environ.get("ANDINI_SHARED_DATA")
        base = Path(root) if root else Path(self.path or ".").parent / self.data.root
        return (base / path).resolve()

    def format_name(self) -> FormatName:
        """The chat format: as configured, or detected from the base model's files."""
        return self.model.format if self.model.format != "auto" else detect_format(self.model.base)


def load_config(path: Path | str) -> RunConfig:
    """Read and validate a YAML config; errors name the file and the key."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read config: {exc.strerror}", path=path) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path=path,
                         line=mark.line + 1 if mark else None) from exc
    if not isinstance(raw, dict):
        raise InputError("the config must be a mapping with data/model/lora/train", path=path)
    raw["path"] = str(path)
    try:
        return TypeAdapter(RunConfig).validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        hint = "unknown key: check its spelling against docs/finetune.md" if err["type"] in ("extra_forbidden", "unexpected_keyword_argument") else None
        raise InputError(err["msg"], path=path, field=key, hint=hint) from exc
