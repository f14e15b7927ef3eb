"""Concurrent calls to the embedded model are decoded as one batch, and give what each gives alone.

The real SmolLM2-135M model, greedy, constrained. Prompts of different lengths are padded on the left
in a batch; the padded rows must produce the same tokens as the same prompts decoded one at a time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.backends import complete
from andini.calls import calls_error
from andini.schema import Message
from tests.test_agent_local import PROMPTS, TOOLS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    from agent.local import get_engine

    return get_engine()


def _ask(prompt: str):
    return complete([Message(role="user", content=prompt)], TOOLS, max_new_tokens=160, tool_choice="required")


def test_concurrent_calls_share_batches_and_match_sequential(engine, monkeypatch):
    prompts = PROMPTS[:6]
    alone = [_ask(p) for p in prompts]

    sizes: list[int] = []
    decode_batch = engine.decode_batch

    def counting(batch):
        sizes.append(len(batch))
        return decode_batch(batch)

    monkeypatch.setattr(engine, "decode_batch", counting)
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(_ask, prompts))

    assert max(sizes) > 1, sizes  # the concurrent calls were decoded together
    assert sum(sizes) == len(prompts)
    assert [r.text for r in together] == [r.text for r in alone]
    assert all(r.calls and r.error is None for r in together)
    assert calls_error([c for r in together for c in r.calls], TOOLS) is None


def test_batch_rows_keep_their_own_budget(engine):
    # a row with a tiny budget stops there; the longer row beside it goes on, as it would alone
    from agent.local import _Request

    def request(text: str, budget: int) -> _Request:
        return _Request(engine.prompt_ids([Message(role="user", content=text)], []), None, budget, 0.0, None, 0.0)

    short, long = engine.decode_batch([request("hello!", 3),
                                       request("Tell me about the installation steps, please.", 12)])
    (alone,) = engine.decode_batch([request("Tell me about the installation steps, please.", 12)])
    assert short.new_tokens <= 3
    assert long.text == alone.text and long.new_tokens == alone.new_tokens
