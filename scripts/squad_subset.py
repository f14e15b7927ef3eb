"""Write the first N articles of a SQuAD-format file: a smaller corpus for `andini eval retrieval(-choice)`.

    python scripts/squad_subset.py SOURCE.json DEST.json [--articles 10]

docs/retrieval.md uses it on SQuAD v1.1 dev (CC BY-SA 4.0), kept outside the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--articles", type=int, default=10, help="how many articles, from the first (default 10)")
    args = parser.parse_args()
    from eval.corpora import squad_subset

    counts = squad_subset(args.source, args.dest, args.articles)
    print(f"{args.dest}: {counts['articles']} articles, {counts['paragraphs']} paragraphs, "
          f"{counts['questions']} questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
