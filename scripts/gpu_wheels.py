"""Wheels for a GPU machine without network that has Python 3.12, torch, transformers, peft, accelerate,
safetensors and tokenizers, so that `andini data`, `finetune` and `export` run there from a checkout.

    python scripts/gpu_wheels.py [--out .whl]

Downloads, for CPython 3.12 on manylinux x86_64, what the fine-tuning path imports beyond those:
pydantic and pydantic-settings (config, settings, records), jsonschema (call validation),
mistral-common with the imports it makes at load time (sentencepiece, tiktoken, pillow, requests,
pydantic-extra-types, pycountry), protobuf (transformers converts the v3 SentencePiece model into
tokenizer.json with it), bitsandbytes (QLoRA) and liger-kernel (the fast path). Versions come from
constraints.txt; bitsandbytes and liger-kernel, not installed here, are pinned below.

bitsandbytes ships one library per CUDA and ROCm release (129 MB unpacked); torch 2.11 is built for
CUDA 12.6 and later, so the copy written here keeps the CPU and CUDA >= 12.6 libraries only (RECORD
rewritten to match). Install there with
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Distributions to fetch; versions from constraints.txt unless pinned here.
PACKAGES = ("pydantic", "pydantic_core", "annotated-types", "typing-inspection", "typing_extensions",
            "pydantic-settings", "python-dotenv", "platformdirs", "jsonschema", "jsonschema-specifications",
            "referencing", "rpds-py", "attrs", "mistral_common", "sentencepiece", "tiktoken", "pillow",
            "pycountry", "pydantic-extra-types", "requests", "urllib3", "charset-normalizer", "idna", "certifi",
            "protobuf")
PINNED = {"bitsandbytes": "0.50.2", "liger-kernel": "0.8.5"}  # measured on the H200 (docs/training-speed.md)
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_24_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64", "linux_x86_64", "any")
#: bitsandbytes libraries kept: CPU and CUDA 12.6+ (the CUDA releases torch 2.11 is built for).
BNB_KEEP = re.compile(r"libbitsandbytes_(cpu|cuda12[6-9]|cuda1[3-9]\d)\.so$")


def constraint_pins(path: Path = ROOT / "constraints.txt") -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[normalize(name)] = version.strip()
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def download(requirements: list[str], out: Path) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps",
                    "--python-version", "3.12", *platforms, "-d", str(out), *requirements], check=True)


def trim_bitsandbytes(wheel: Path) -> None:
    """Drop the libraries of other CUDA/ROCm/XPU releases from the wheel, in place, RECORD to match."""
    with zipfile.ZipFile(wheel) as src:
        names = [n for n in src.namelist()
                 if not (n.startswith("bitsandbytes/libbitsandbytes_") and not BNB_KEEP.search(n))]
        if len(names) == len(src.namelist()):
            return  # already trimmed
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = [r for r in csv.reader(io.StringIO(src.read(record).decode())) if not r or r[0] in names]
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        tmp = wheel.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for name in names:
                dst.writestr(src.getinfo(name), text.getvalue() if name == record else src.read(name))
    tmp.replace(wheel)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / ".whl", help="folder for the wheels (git-ignored)")
    args = parser.parse_args()
    pins = constraint_pins()
    missing = [p for p in PACKAGES if normalize(p) not in pins]
    if missing:
        sys.exit(f"not pinned in constraints.txt: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    download([f"{p}=={pins[normalize(p)]}" for p in PACKAGES] + [f"{p}=={v}" for p, v in PINNED.items()], args.out)
    for wheel in args.out.glob("bitsandbytes-*.whl"):
        trim_bitsandbytes(wheel)
    total = 0
    for wheel in sorted(args.out.glob("*.whl"), key=lambda w: w.stat().st_size):
        total += wheel.stat().st_size
        print(f"{wheel.stat().st_size / 2**20:7.2f} MiB  {wheel.name}")
    print(f"{total / 2**20:7.2f} MiB  in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
