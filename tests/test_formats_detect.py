"""Which chat format a checkpoint uses is read from its files (andini.formats.detect_format), never from
its name; training, serving and evaluation all ask it. A Mistral-shaped checkpoint saved as `m7b` is
trained and served in the Mistral v3 format, token for token the same prompt."""

import json

import pytest
import yaml

from andini.errors import AndiniError
from andini.formats import detect_format
from andini.schema import Example, Message, ToolCall, ToolSpec


def checkpoint(path, model_type: str, arch: str, added: list[str] = ()):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": [arch]}))
    if added:
        (path / "tokenizer.json").write_text(json.dumps({"added_tokens": [{"content": t} for t in added]}))
    return path


def test_detect_reads_the_files_not_the_name(tmp_path):
    assert detect_format(checkpoint(tmp_path / "chatml-model", "mistral", "MistralForCausalLM")) == "mistral"
    assert detect_format(checkpoint(tmp_path / "mistral-7b", "llama", "LlamaForCausalLM")) == "chatml"
    # the tokenizer outranks the architecture: a Mistral fine-tune that speaks ChatML is ChatML ...
    hermes = checkpoint(tmp_path / "hermes", "mistral", "MistralForCausalLM", ["<s>", "<|im_start|>", "<|im_end|>"])
    assert detect_format(hermes) == "chatml"
    # ... and v3 control tokens mean v3 whatever the architecture says
    v3 = checkpoint(tmp_path / "other", "llama", "LlamaForCausalLM", ["[AVAILABLE_TOOLS]", "[TOOL_CALLS]",
                                                                      "[TOOL_RESULTS]"])
    assert detect_format(v3) == "mistral"
    assert detect_format(None) == detect_format("smollm2-135m-instruct") == "chatml"  # the embedded default


def test_a_name_without_a_folder_is_an_error_with_the_fix(tmp_path):
    with pytest.raises(AndiniError, match="No local model") as err:
        detect_format("mistralai/Mistral-7B-Instruct-v0.3")
    assert "model.format" in err.value.hint


def test_mistral_shaped_checkpoint_trains_and_serves_in_v3(mistral_shaped, tmp_path):
    from agent.backends import complete
    from agent.local import get_engine
    from andini.formats import get_format, prompt_text
    from eval.toolcalls import ToolcallsConfig, _prompt_text
    from finetune.config import load_config
    from finetune.render import load_tokenizer, render_example
    from finetune.train import finetune

    assert "mistral" not in str(mistral_shaped).lower() and detect_format(mistral_shaped) == "mistral"
    tool = ToolSpec(name="add", parameters={"type": "object", "properties": {"a": {"type": "integer"}}})
    examples = [Example(id=f"t{i}", messages=[Message(role="user", content=f"add {i}")], tools=[tool],
                        target_calls=[ToolCall(name="add", arguments={"a": i})]) for i in range(6)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in examples[:4]))
    (data / "val.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in examples[4:]))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "data": {"sources": [], "out": str(data)}, "model": {"base": str(mistral_shaped)},  # format: auto
        "lora": {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "train": {"output_dir": str(tmp_path / "adapter"), "max_steps": 1, "batch_size": 2, "max_seq_len": 256,
                  "eval_steps": 1, "save_steps": 1, "logging_steps": 1, "warmup_ratio": 0.0,
                  "early_stopping_patience": None, "precision": "fp32", "quality_examples": 0}}))
    assert load_config(path).format_name() == "mistral"
    manifest = finetune(path, progress=lambda _: None)
    assert manifest["format"] == "mistral"

    engine = get_engine(str(mistral_shaped), str(tmp_path / "adapter"))  # served with its adapter
    assert engine.fmt.name == "mistral"
    served = engine.prompt_ids(examples[0].messages, [tool])[0].tolist()
    trained, _ = render_example(examples[0], load_tokenizer(str(mistral_shaped), "mistral"), "mistral")
    assert trained[:len(served)] == served  # the prompt the server sends is the start of the trained text
    out = complete(examples[0].messages, [tool], backend="local", model=str(mistral_shaped), constrained=False,
                   max_new_tokens=2)
    assert out.new_tokens >= 1
    recorded = _prompt_text(ToolcallsConfig(data=tmp_path, format="andini", backend="local",
                                            model=str(mistral_shaped)), examples[0])
    assert recorded == prompt_text(get_format("mistral"), examples[0].messages, [tool])
    assert recorded.startswith("<s>[AVAILABLE_TOOLS]")
