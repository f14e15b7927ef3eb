"""`andini data build|check`, `andini finetune`, `andini adapters`, `andini export`, `andini bench train`
(argparse only; the handlers import the heavy modules)."""

from __future__ import annotations

import argparse
import sys

FORMATS = ("bfcl", "openai", "sharegpt", "glaive", "seal", "nestful", "coplan", "andini")


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands; handlers import heavy modules lazily."""
    data = sub.add_parser("data", help="Build and check fine-tuning data sets.")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    build = data_sub.add_parser("build", help="Sources -> train/val/test JSONL and a dataset card.",
                                description="Read, validate, deduplicate, decontaminate, split and mix the "
                                            "sources a config names; write JSONL splits and card.md/.json/.png.")
    build.add_argument("config", help="YAML run config (see configs/).")
    build.add_argument("--strict", action="store_true", help="Stop at the first invalid record.")
    build.add_argument("--json", action="store_true", help="Print the card as one JSON object.")
    build.set_defaults(func=_data_build)

    check = data_sub.add_parser("check", help="Validate a data file: errors with line and field.")
    check.add_argument("file", help="Data file to check.")
    check.add_argument("--format", choices=FORMATS, help="Reader format (default: guessed from the name).")
    check.add_argument("--strict", action="store_true", help="Stop at the first invalid record (exit 1).")
    check.add_argument("--limit", type=int, default=20, help="Problems to list in full (default 20).")
    check.add_argument("--json", action="store_true", help="Print the report as one JSON object.")
    check.set_defaults(func=_data_check)

    ft = sub.add_parser("finetune", help="Train a LoRA/QLoRA adapter from a config.",
                        description="Train the adapter the config describes; resumes from the last checkpoint "
                                    "in train.output_dir unless --no-resume.")
    ft.add_argument("config", help="YAML run config (see configs/).")
    ft.add_argument("--no-resume", dest="resume", action="store_false", help="Start over even if checkpoints exist.")
    ft.add_argument("--merge", metavar="DIR", help="Also write a merged safetensors model to DIR.")
    ft.add_argument("--json", action="store_true", help="Print the run manifest as one JSON object.")
    ft.set_defaults(func=_finetune, resume=True)

    ex = sub.add_parser("export", help="Copy an adapter for TGI, or merge it into its base model.")
    ex.add_argument("adapter", help="Adapter folder written by `andini finetune`.")
    ex.add_argument("--out", required=True, help="Destination folder (must be new or empty).")
    ex.add_argument("--merge", action="store_true", help="Merge into the base model (safetensors).")
    ex.add_argument("--base", help="Base model (default: from the adapter's run manifest).")
    ex.set_defaults(func=_export)

    ads = sub.add_parser("adapters", help="List the trained adapters (or register one with `add`).",
                         description="List the adapters registered under $ANDINI_HOME/adapters, newest first, "
                                     "with their base model and what and when they were trained on. "
                                     "`andini finetune` registers what it trains; the agent uses the newest one "
                                     "for its model unless ANDINI_ADAPTER says otherwise.")
    ads.add_argument("--json", action="store_true", help="Print one JSON object: the adapters and the one the local backend uses.")
    ads.set_defaults(func=_adapters)
    ads_sub = ads.add_subparsers(dest="adapters_command", metavar="SUBCOMMAND")
    add = ads_sub.add_parser("add", help="Register an adapter folder (copies its files).",
                             description="Copy an adapter folder (e.g. one trained before registration "
                                         "existed) to $ANDINI_HOME/adapters/NAME.")
    add.add_argument("folder", help="Adapter folder with adapter_config.json.")
    add.add_argument("--name", help="Name to register it under (default: the folder's name).")
    add.add_argument("--json", action="store_true", help="Print the registered adapter as one JSON object.")
    add.set_defaults(func=_adapters_add)

    _register_bench(sub)


def _register_bench(sub: argparse._SubParsersAction) -> None:
    """`andini bench train`, owned by the GPU speed work; absent module -> no command, --help still works."""
    try:
        from finetune import bench as bench_module  # light by contract: argparse in add_arguments
    except ImportError:
        return
    bench = sub.add_parser("bench", help="Benchmarks.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", required=True)
    train = bench_sub.add_parser("train", help="Training speed of andini finetune beside plain transformers + peft.")
    bench_module.add_arguments(train)
    train.set_defaults(func=lambda args: bench_module.main(args))


def _data_build(args) -> int:
    from andini.cli import print_json
    from finetune.config import load_config
    from finetune.data import build

    config = load_config(args.config)
    card = build(config, strict=args.strict, progress=(lambda _: None) if args.json else print)
    if args.json:
        print_json(card)
    else:
        print(f"card: {config.data.out}/card.md")
    return 0


def _data_check(args) -> int:
    from andini.cli import print_json
    from finetune.readers import guess_format
    from finetune.validate import check_report

    fmt = args.format or guess_format(args.file)
    report = check_report(args.file, fmt, strict=args.strict, limit=args.limit)
    if args.json:
        print_json(report)
    else:
        print(f"{report['file']} ({fmt}): {report['valid']} valid, {report['invalid']} invalid")
        for reason, n in report["by_reason"].items():
            print(f"  {n:5d}  {reason}")
        for problem in report["problems"]:
            where = f"{problem['path']}:{problem['line']}"
            field = f" (field '{problem['field']}')" if problem["field"] else ""
            print(f"{where}: {problem['reason']}{field}", file=sys.stderr)
    return 1 if report["invalid"] else 0


def _finetune(args) -> int:
    from andini.cli import print_json
    from finetune.distributed import close_process_group
    from finetune.train import finetune

    try:
        manifest = finetune(args.config, resume=args.resume, progress=(lambda _: None) if args.json else print)
    finally:
        close_process_group()  # under accelerate launch / torchrun; a no-op in one process
    if args.merge:
        from finetune.export import export

        export(manifest["config"]["train"]["output_dir"], args.merge, merge=True)
    if args.json:
        print_json(manifest)
    else:
        metrics = manifest["metrics"]
        print(f"adapter: {manifest['config']['train']['output_dir']} (eval_loss {metrics.get('eval_loss')}, "
              f"{metrics.get('wall_s')} s)")
    return 0


def _adapters(args) -> int:
    from andini.adapters import choose, list_adapters
    from andini.cli import print_json
    from andini.errors import AndiniError
    from andini.settings import get_settings

    settings = get_settings()
    adapters = list_adapters(settings.home)
    try:  # "active": what the local backend loads (a server's adapters are ids it knows, not these folders)
        active = choose(settings.adapter, settings.model, settings.home)
    except AndiniError as exc:  # a setting naming no adapter: the listing is what helps fix it
        print(f"error: {exc}", file=sys.stderr)
        active = None
    if args.json:
        print_json({"adapters": [a.model_dump(mode="json") for a in adapters],
                    "active": active.model_dump(mode="json") if active else None})
        return 0 if active else 1
    for a in adapters:
        mark = "*" if active and active.adapter == str(a.path) else " "
        print(f"{mark} {a.label()}" + (f"  [{a.problem}]" if a.problem else ""))
        print(f"    {a.path}" + (f"  from {a.config}" if a.config else ""))
    if not adapters:
        print(f"no adapters registered under {settings.home / 'adapters'}")
    if active:
        print(f"local backend: {active.describe()}")
    return 0 if active else 1


def _adapters_add(args) -> int:
    from andini.adapters import register
    from andini.cli import print_json
    from andini.settings import get_settings

    info = register(args.folder, get_settings().home, name=args.name)
    if args.json:
        print_json(info.model_dump(mode="json"))
    else:
        print(f"registered {info.label()} at {info.path}")
    return 0


def _export(args) -> int:
    from finetune.export import export

    print(export(args.adapter, args.out, merge=args.merge, base=args.base))
    return 0
