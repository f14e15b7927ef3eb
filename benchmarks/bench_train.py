"""Run by hand: LoRA training throughput, baseline vs fast path (same as `andini bench train`).

    python benchmarks/bench_train.py --tokens artifacts/bench-tokens.npz --out runs/bench

Prints a table (variant, tokens/s, speed-up, MFU, peak GiB, parity loss); see docs/training-speed.md.
It imports only finetune.bench, so it also runs where the andini package's own dependencies are absent
(the lent GPU machine).
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
