"""The multi-process path (Trainer + accelerate, DDP on gloo) keeps the math of one process.

Two processes with half the batch each give the same per-step loss as one process on the whole global
batch, and a checkpoint written by either resumes in the other. Uses the config-built tiny Llama so the
four launches stay within seconds of compute each; `python -m finetune.distributed` (no --model) runs the
same check on SmolLM2-135M.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TORCHRUN = Path(sys.executable).with_name("torchrun")
STEPS = 4


def launch(out: Path, processes: int, resume: Path | None = None) -> list[dict]:
    """Run finetune.distributed on 1 (plain python) or N (torchrun, gloo) processes; its logged losses."""
    worker = ["-m", "finetune.distributed", "--model", "tiny", "--out", str(out), "--steps", str(STEPS),
              "--save-steps", "2", "--lr", "1e-2"]
    if resume:
        worker += ["--resume", str(resume)]
    if processes == 1:
        cmd = [sys.executable, *worker]
    else:
        cmd = [str(TORCHRUN), "--standalone", f"--nproc-per-node={processes}", *worker]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "losses.json").read_text())
    assert record["world_size"] == processes
    return record["losses"]


def losses_by_step(history: list[dict]) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in history}


@pytest.mark.slow
def test_two_processes_match_one_and_checkpoints_cross_resume(tmp_path):
    if not TORCHRUN.exists():
        pytest.skip("torchrun is not installed beside this Python")
    single = losses_by_step(launch(tmp_path / "one", 1))
    double = losses_by_step(launch(tmp_path / "two", 2))
    assert sorted(single) == sorted(double) == list(range(1, STEPS + 1))
    assert len({round(v, 4) for v in single.values()}) > 1, "the loss never moved: nothing was trained"
    for step in single:
        assert double[step] == pytest.approx(single[step], rel=1e-4, abs=1e-4), step

    # A 2-process checkpoint resumes on 1 process, and the other way round, landing on the same losses.
    from_two = losses_by_step(launch(tmp_path / "two-then-one", 1, resume=tmp_path / "two" / "checkpoint-2"))
    from_one = losses_by_step(launch(tmp_path / "one-then-two", 2, resume=tmp_path / "one" / "checkpoint-2"))
    for resumed in (from_two, from_one):
        assert {3, 4} <= set(resumed)  # steps 1-2 come back from the checkpoint's own log
        for step in resumed:
            assert resumed[step] == pytest.approx(single[step], rel=1e-4, abs=1e-4), step
