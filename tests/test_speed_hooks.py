"""The training fast path: no-op hooks on CPU, packing that keeps examples apart, and the benchmark
itself on a tiny config. The GPU measurements are in docs/training-speed.md; the GPU test at the end
skips without CUDA."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest
import torch

from andini.errors import AndiniError
from finetune import bench, speed


def tiny_model(layers: int = 2):
    from transformers import AutoModelForCausalLM, MistralConfig

    torch.manual_seed(0)
    config = MistralConfig(**{**bench.SHAPES["tiny"], "num_hidden_layers": layers, "vocab_size": 256},
                           attn_implementation="sdpa", use_cache=False)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


def examples(lengths: list[int], seed: int = 1) -> list[tuple[list[int], list[int]]]:
    """Token rows with the first half as prompt (-100) and the rest trained, like rendered examples."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(1, 256, (n,), generator=gen).tolist()
        out.append((ids, [-100] * (n // 2) + ids[n // 2:]))
    return out


def rows_of(group: list[tuple[list[int], list[int]]]) -> list[dict]:
    return [{"input_ids": ids, "labels": labels} for ids, labels in group]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU behaviour")
def test_hooks_change_nothing_on_cpu():
    model = tiny_model()
    before = {n: p.clone() for n, p in model.named_parameters()}
    config = SimpleNamespace(train=SimpleNamespace(gradient_checkpointing=True))
    assert speed.training_overrides(config) == {}
    assert speed.apply_fast_path(model, config) is model
    assert not any(layer.gradient_checkpointing for layer in speed.decoder_layers(model))
    assert type(model.model.norm).__name__ == "MistralRMSNorm"
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_options_from_config():
    assert speed.options_from(None) == speed.FastPathOptions()
    assert speed.options_from(SimpleNamespace(fast_path=False)).enabled is False
    assert speed.options_from(SimpleNamespace(fast_path={"liger": False})).liger is False
    with pytest.raises(AndiniError, match="nope"):
        speed.options_from(SimpleNamespace(fast_path={"nope": 1}))
    assert speed.wants_checkpointing(SimpleNamespace(train=SimpleNamespace(gradient_checkpointing=False))) is False


def test_selective_checkpointing_marks_the_first_layers():
    model = tiny_model(layers=4)
    assert speed.enable_checkpointing(model, 0.5) == 2
    assert [layer.gradient_checkpointing for layer in speed.decoder_layers(model)] == [True, True, False, False]


def tiny_bench_config(tmp_path):
    """The shipped QLoRA config made CPU-sized: fp32, no quantization, short rows, no LoRA dropout."""
    from dataclasses import replace

    from finetune.config import load_config

    config = load_config("configs/mistral-7b-qlora.yaml")
    return replace(config, lora=replace(config.lora, dropout=0.0),
                   train=replace(config.train, quantization="none", precision="fp32", max_seq_len=256,
                                 learning_rate=1e-2, output_dir=str(tmp_path / "adapter")))


def bench_args(tmp_path, **overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--shape", "tiny", "--device", "cpu", "--steps", "2", "--warmup", "1",
                              "--parity", "3", "--base-dir", str(tmp_path / "base"), "--out", str(tmp_path / "out")])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


@pytest.mark.slow
def test_bench_trains_andini_finetunes_pipeline_and_keeps_the_loss(tmp_path):
    """The andini row runs train.py's own model and Trainer (varlen attention, selective loss); on CPU
    in fp32 its losses follow the plain padded run far closer than a second LoRA seed does."""
    rows = [{"input_ids": ids, "labels": labels, "position_ids": list(range(len(ids)))}
            for ids, labels in examples([40, 90, 128, 60, 75, 110, 30, 128, 64, 100, 50, 80] * 2)]
    plan = bench.parse_rows("plain-gc,none+gc=false")
    profiles = tmp_path / "profiles"
    report = bench.run_bench(tiny_bench_config(tmp_path), rows, plan, bench_args(tmp_path, profile=profiles))
    plain, andini = report["results"]
    for row in ("plain-gc", "none+gc=false"):  # one profiled step per row: its operators by time
        assert "aten::" in (profiles / f"{row}.txt").read_text()
    assert [plain["error"], andini["error"]] == [None, None]
    assert all(r["tokens_per_s"] > 0 and r["steps"] == 2 and r["tokens"] > 0 for r in (plain, andini))
    assert len(andini["parity_losses"]) == 3 and report["parity_spread"] > 1e-3
    assert andini["parity_mean_abs_diff"] < 1e-4 < report["parity_spread"]
    assert bench.format_table(report).splitlines()[3].startswith("| plain-gc |")
    assert (tmp_path / "out" / "partial.json").exists()


def test_bench_rows_are_configs_of_andini_finetune(tmp_path):
    config = tiny_bench_config(tmp_path)
    row, = bench.parse_rows("24gb+compile=true+gc=false")
    run = bench.row_config(config, row, "/models/x", steps=5, out=str(tmp_path))
    assert (run.train.memory, run.train.batch_size, run.train.grad_accum) == ("24gb", 12288 // 256, 1)
    assert run.train.gradient_checkpointing is False and run.fast_path.model_dump(exclude_unset=True) == {"compile": True}
    assert speed.options_from(run).compile is True and run.model.base == "/models/x"
    with pytest.raises(AndiniError, match="nope"):
        bench.parse_rows("max+nope=1")


def test_bench_comparison_rows_train_the_anchors_data_with_their_own_lora_dropout(tmp_path):
    """The plain and Unsloth rows keep their data (4 x 2048 concatenated) and take `dropout=`, so each
    andini row has a comparison with the same LoRA set-up; a misspelt row names the known ones."""
    config = tiny_bench_config(tmp_path)
    plain, unsloth = bench.parse_rows("plain-gc+dropout=0,unsloth-qlora")
    assert (plain.plain, unsloth.unsloth) == (bench.ANCHORS["plain-gc"], (4, 2048, True))
    assert bench.row_config(config, plain, "/m", steps=2, out=str(tmp_path)).lora.dropout == 0.0
    assert bench.row_config(config, unsloth, "/m", steps=2, out=str(tmp_path)).lora.dropout == config.lora.dropout
    with pytest.raises(AndiniError, match="unsloth-gc"):
        bench.parse_rows("unslot-gc")


def test_rendered_rows_round_trip(tmp_path):
    """--render-only writes what train.render_all makes of the split; --rows reads back the same rows."""
    from dataclasses import replace

    from andini.schema import Example, Message, ToolCall, ToolSpec
    from finetune.render import load_tokenizer
    from finetune.train import render_all

    tool = ToolSpec(name="add", parameters={"type": "object", "properties": {"a": {"type": "integer"}}})
    split = [Example(id=f"e{i}", messages=[Message(role="user", content=f"add {i}")], tools=[tool],
                     target_calls=[ToolCall(name="add", arguments={"a": i})]) for i in range(3)]
    (tmp_path / "train.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in split))
    config = tiny_bench_config(tmp_path)
    config = replace(config, data=replace(config.data, out=str(tmp_path)))
    assert bench.render_rows(config, tmp_path / "rows.npz") == 3
    expected, _ = render_all(split, load_tokenizer(config.model.base, "mistral"), "mistral", 256)
    assert bench.load_rows(tmp_path / "rows.npz") == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the fast path is GPU-only)")
def test_fast_path_keeps_the_loss_on_gpu():
    plain = tiny_model().cuda().to(torch.bfloat16)
    fast = speed.apply_fast_path(tiny_model().cuda().to(torch.bfloat16), None)
    batch = {k: v.cuda() for k, v in bench.padded_collator(rows_of(examples([37, 12, 50, 23]))).items()}
    fast.train()
    plain.train()
    fast_loss, plain_loss = fast(**batch).loss, plain(**batch).loss
    assert fast_loss.item() == pytest.approx(plain_loss.item(), rel=2e-2)
    fast_loss.backward()  # through Liger's kernels and the checkpointed layers
    plain_loss.backward()
    grads = [(f.grad.float(), p.grad.float()) for f, p in zip(fast.parameters(), plain.parameters(), strict=True)]
    assert all(torch.isfinite(f).all() for f, _ in grads)
    relative = sum((f - p).norm() ** 2 for f, p in grads) ** 0.5 / sum(p.norm() ** 2 for _, p in grads) ** 0.5
    assert relative < 5e-2
    assert all(layer.gradient_checkpointing for layer in speed.decoder_layers(fast))
    assert speed.training_overrides(None)["optim"] == "adamw_torch_fused"


def test_varlen_packed_loss_equals_each_example_alone():
    """`andini finetune`'s path (pack, flatten with example lengths, varlen attention, labelled-only
    loss) gives the token-weighted mean of each example's own loss, computed alone with plain SDPA."""
    import torch.nn.functional as F

    from finetune import train, varlen

    plain = tiny_model()
    packed_model = tiny_model()
    varlen.use(packed_model, varlen.register())
    group = examples([37, 12, 50, 23, 9])
    rows = train.pack([{"input_ids": ids, "labels": labels, "position_ids": list(range(len(ids)))}
                       for ids, labels in group], max_len=64)
    assert len(rows) > 1 and any(r["position_ids"].count(0) > 1 for r in rows)  # rows hold several examples
    batch = train.PackedCollator()(rows)
    assert batch["input_ids"].shape == (1, sum(len(ids) for ids, _ in group))
    assert batch["cu_seq_lens_q"].tolist()[-1] == batch["input_ids"].shape[1]
    with torch.no_grad():
        loss, _ = train.selective_loss(packed_model, batch)
        total, count = 0.0, 0
        for ids, labels in group:
            logits = plain(input_ids=torch.tensor([ids])).logits[0, :-1]
            target = torch.tensor(labels[1:])
            total += F.cross_entropy(logits, target, ignore_index=-100, reduction="sum").item()
            count += int((target != -100).sum())
    assert loss.item() == pytest.approx(total / count, abs=1e-5)


def test_varlen_attention_keeps_examples_apart_and_falls_back_to_sdpa():
    from finetune import varlen

    model = tiny_model()
    varlen.use(model, varlen.register())
    a, b = examples([7, 11], seed=3)
    positions = list(range(7)) + list(range(11))
    with torch.no_grad():
        packed = model(input_ids=torch.tensor([a[0] + b[0]]), position_ids=torch.tensor([positions]),
                       **varlen.sequence_lengths(positions)).logits[0]
        alone_b = model(input_ids=torch.tensor([b[0]])).logits[0]  # no lengths: transformers' SDPA
        leaky = model(input_ids=torch.tensor([a[0] + b[0]]), position_ids=torch.tensor([positions])).logits[0]
    assert torch.allclose(packed[7:], alone_b, atol=1e-5)
    assert not torch.allclose(leaky[7:], alone_b, atol=1e-3)  # without lengths the row is one sequence
    with pytest.raises(ValueError, match="position_ids"):
        varlen.sequence_lengths([1, 2, 0])


def test_memory_class_sets_the_batch_and_keeps_rows_per_step():
    from dataclasses import replace

    from finetune.config import load_config

    config = load_config("configs/mistral-7b-qlora.yaml")  # 4 rows x 4 accumulation of 4096 tokens
    assert speed.apply_memory_class(config) is config  # no class: as configured
    small = speed.apply_memory_class(replace(config, train=replace(config.train, memory="12gb")))
    assert (small.train.batch_size, small.train.grad_accum, small.train.quantization) == (2, 8, "4bit")
    big = speed.apply_memory_class(replace(config, train=replace(config.train, memory="max"),
                                           fast_path={"liger": False}))
    assert (big.train.batch_size, big.train.grad_accum, big.train.gradient_checkpointing) == (2, 8, False)
    assert speed.options_from(big) == speed.FastPathOptions(liger=False)


def test_selective_checkpointing_gives_the_full_checkpointing_gradients():
    grads = []
    for policy in ("full", "save-matmuls"):
        model = tiny_model().train()
        speed.enable_checkpointing(model, 1.0, policy)
        batch = bench.padded_collator(rows_of(examples([30, 20, 40])))
        model(**batch).loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))
    with pytest.raises(AndiniError, match="checkpoint_policy"):
        speed.enable_checkpointing(tiny_model(), 1.0, "nope")


def test_lora_reads_its_bf16_input_as_is_under_autocast_and_keeps_the_gradients():
    """The cast lever: LoRA sees the bf16 activations (no fp32 copy), its weights stay fp32, and the
    loss and LoRA gradients are those of peft's casting path within bf16 rounding."""
    from peft import LoraConfig, get_peft_model

    results = []
    for as_is in (False, True):
        model = get_peft_model(tiny_model().to(torch.bfloat16).train(),
                               LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
                                          init_lora_weights=False))
        if as_is:
            assert speed.read_lora_input_as_is(model) == 14  # 7 projections x 2 layers
        seen = set()
        for name, module in model.named_modules():
            if name.endswith("lora_A.default"):
                module.register_forward_pre_hook(lambda m, args, seen=seen: seen.add(args[0].dtype))
        batch = bench.padded_collator(rows_of(examples([30, 20, 40])))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
        assert {p.dtype for p in lora.values()} == {torch.float32}
        assert seen == {torch.bfloat16 if as_is else torch.float32}
        results.append((loss.detach().float(), [p.grad.float() for p in lora.values()]))
        speed.read_lora_input_as_is(model, False)  # restored for generation outside autocast
        assert all(m.cast_input_dtype_enabled for n, m in model.named_modules() if n.endswith("q_proj"))
    (loss_cast, grads_cast), (loss_as_is, grads_as_is) = results
    assert torch.allclose(loss_cast, loss_as_is, rtol=1e-2)
    for a, b in zip(grads_cast, grads_as_is, strict=True):
        assert torch.linalg.norm(a - b) <= 0.05 * torch.linalg.norm(a) + 1e-6
