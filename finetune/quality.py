"""Before/after tool-call quality on held-out examples: the base model, then the same model with the
adapter, greedy, unconstrained (so the format itself is measured), prompts rendered by the same chat
format as training.

Scores per example: the output parses; every call passes the one call validator (`andini.calls`);
the called names equal the target's (no call at all for irrelevance examples); calls match the target
exactly by `andini.calls.match_calls` (names and arguments, order ignored, BFCL string normalisation). The eval package does the full BFCL-rule scoring; this
is the quick check a training run reports in its manifest.
"""

from __future__ import annotations

from typing import Any

from andini.calls import invalid_calls, match_calls
from andini.schema import Example
from finetune.render import mistral_common_raw, segment_encoder


def tool_examples(examples: list[Example], n: int) -> list[Example]:
    """The first `n` examples that offer tools (calls or irrelevance), in file order. Plans are
    scored by `andini eval plans`, so plan examples are left to it."""
    return [e for e in examples if e.tools and e.target_plan is None][:n]


def score(example: Example, text: str, fmt: Any) -> dict[str, bool]:
    try:
        _, calls = fmt.parse(text)
    except (ValueError, TypeError):
        return {"parsed": False, "valid": False, "names": False, "exact": False}
    valid = not invalid_calls(calls, example.tools, references=True)
    names = sorted(c.name for c in calls) == sorted(c.name for c in example.target_calls)
    return {"parsed": True, "valid": valid, "names": names,
            "exact": match_calls(calls, example.target_calls, references=True,
                                 expected_labels=example.meta.get("labels")).exact}


def generate(model: Any, tokenizer: Any, fmt: Any, examples: list[Example], batch: int = 8,
             max_new_tokens: int = 72) -> list[str]:
    """Greedy completions for each example's prompt (left-padded batches)."""
    import torch

    from andini.formats import prompt_text

    encode = segment_encoder(tokenizer, fmt)
    prompts = [encode(prompt_text(fmt, e.messages, e.tools)) for e in examples]
    raw = mistral_common_raw(tokenizer)
    if raw is not None:
        pad = eos = raw.eos_id
    else:  # stop at the format's end of turn too (SmolLM2's converted eos is <|endoftext|>)
        eos = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(fmt.end_of_turn)]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    device = next(model.parameters()).device  # the prompts go where the model is (a GPU after training)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    texts: dict[int, str] = {}
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in idx], device=device)
        mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in idx], device=device)
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=pad, eos_token_id=eos, use_cache=True)
        for row, i in enumerate(idx):
            texts[i] = _decode(tokenizer, out[row, width:].tolist())
    return [texts[i] for i in range(len(prompts))]


def _decode(tokenizer: Any, ids: list[int]) -> str:
    if hasattr(tokenizer, "instruct_tokenizer"):
        return tokenizer.decode(ids, special_token_policy="keep")
    return tokenizer.decode(ids, skip_special_tokens=False)


def evaluate(model: Any, tokenizer: Any, fmt: Any, examples: list[Example]) -> dict[str, Any]:
    outputs = generate(model, tokenizer, fmt, examples)
    scores = [score(e, t, fmt) for e, t in zip(examples, outputs, strict=True)]
    n = max(len(scores), 1)
    summary: dict[str, Any] = {k: round(sum(s[k] for s in scores) / n, 3) for k in ("parsed", "valid", "names", "exact")}
    summary["n"] = len(scores)
    calls = [s for e, s in zip(examples, scores, strict=True) if e.target_calls]
    quiet = [s for e, s in zip(examples, scores, strict=True) if not e.target_calls]
    summary["call_examples"] = {"n": len(calls), **{k: round(sum(s[k] for s in calls) / max(len(calls), 1), 3)
                                                     for k in ("valid", "names", "exact")}}
    summary["no_call_examples"] = {"n": len(quiet), "no_call": round(sum(s["names"] for s in quiet)
                                                                      / max(len(quiet), 1), 3)}
    summary["samples"] = [{"id": e.id, "output": t[:300]} for e, t in list(zip(examples, outputs, strict=True))[:3]]
    return summary


def before_after(model: Any, tokenizer: Any, fmt: Any, test: list[Example], n: int) -> dict[str, Any]:
    """Scores of the base model (adapter disabled) and of the adapter on the same held-out examples."""
    examples = tool_examples(test, n)
    model.eval()
    with model.disable_adapter():
        before = evaluate(model, tokenizer, fmt, examples)
    after = evaluate(model, tokenizer, fmt, examples)
    return {"before": before, "after": after}
