"""Run by hand: tokens/s of `andini finetune`'s own training beside plain transformers + peft
(the same as `andini bench train`).

    python benchmarks/bench_train.py --config configs/mistral-7b-qlora.yaml --rows build/rows.npz --out runs/bench

Prints a table (row, tokens/s, speed-up, MFU, peak GiB, loss parity); see docs/training-speed.md. On a
machine without the andini package installed, put the checkout on PYTHONPATH with pydantic beside it.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from finetune import bench  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_arguments(parser)
    sys.exit(bench.main(parser.parse_args()))
