"""The trained adapters a person has, and which one answers.

`andini finetune` registers each adapter it trains by copying its files to `$ANDINI_HOME/adapters/NAME/`
(NAME: the output folder's name), so the adapter outlives the clone it was trained in and
`train.output_dir` keeps its checkpoints as before. The agent, the UI and `andini adapters` read that
folder. It lives here, in the core package, because finetune/ writes it while agent/ and ui/ read it
and neither may import finetune/.

The setting `ANDINI_ADAPTER` chooses: unset means the newest registered adapter trained on the model
the local backend runs (never one trained on another base); `none` or empty means the base model; a
registered name or a folder means that adapter; for a server backend, the adapter id the server knows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from andini.errors import AndiniError
from andini.models import DEFAULT_MODEL, HUB_IDS

#: The files that make an adapter (what registering and `andini export` copy).
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin",
                 "run_manifest.json", "README.md")
#: The one command that trains the shipped CPU adapter from a fresh clone (as the README gives it).
TRAIN_COMMAND = (".venv/bin/andini data build configs/smollm2-cpu.yaml && "
                 ".venv/bin/andini finetune configs/smollm2-cpu.yaml")
OFF_VALUES = ("", "none")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class AdapterInfo(BaseModel):
    """A registered adapter: where it is, what it was trained on and when (from its run manifest)."""

    name: str = Field(description="Folder name under $ANDINI_HOME/adapters; ANDINI_ADAPTER accepts it.")
    path: Path = Field(description="The adapter folder.")
    base_model: str = Field(description="The model it was trained on (andini's name, a folder or a hub id).")
    trained_at: str | None = Field(None, description="When training finished (UTC, ISO 8601).")
    config: str | None = Field(None, description="The run config it was trained from.")
    data: str | None = Field(None, description="The data folder it was trained on (data.out of the config).")
    sources: list[str] = Field(default_factory=list, description="The source files of that data.")
    train_examples: int | None = Field(None, description="Training examples seen.")
    eval_loss: float | None = Field(None, description="Validation loss at the end of training.")
    problem: str | None = Field(None, description="Why it cannot be used (unreadable files); never picked then.")

    def label(self) -> str:
        """One line for menus: name, base, date, examples."""
        when = (self.trained_at or "?")[:16].replace("T", " ")
        examples = f" · {self.train_examples} examples" if self.train_examples else ""
        return f"{self.name} ({self.base_model} · {when}{examples})"


class AdapterChoice(BaseModel):
    """Which adapter answers, and why."""

    adapter: str | None = Field(description="The folder (local) or adapter id (server) used; None: the base model.")
    name: str | None = Field(None, description="Its registered name, when it is registered.")
    reason: Literal["set", "newest", "off", "unset"] = Field(
        description="set: ANDINI_ADAPTER (or an option) named it; newest: unset, so the newest registered "
                    "adapter trained on the served model; off: set to 'none'; unset: unset and none picked "
                    "(none registered for this model, or a server backend).")
    base_model: str | None = Field(None, description="The base model the adapter was trained on, when known.")

    def describe(self) -> str:
        """A short line for the CLI and the UI."""
        if self.reason == "off":
            return "no adapter (ANDINI_ADAPTER=none)"
        if self.adapter is None:
            return "no adapter"
        why = "newest registered" if self.reason == "newest" else "set"
        return f"adapter {self.name or self.adapter} ({why})"


def adapters_dir(home: Path) -> Path:
    return Path(home) / "adapters"


def is_off(value: str | None) -> bool:
    """ANDINI_ADAPTER=none (or empty): the base model, no automatic choice."""
    return value is not None and value.strip().lower() in OFF_VALUES


def explicit(value: str | None) -> str | None:
    """The adapter a setting names, with 'none' and empty read as no adapter (servers, evaluation)."""
    return None if value is None or is_off(value) else value.strip()


def read_adapter(folder: Path) -> AdapterInfo:
    """An adapter folder's facts, from run_manifest.json when there is one, else from adapter_config.json."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
        manifest = json.loads((folder / "run_manifest.json").read_text()) \
            if (folder / "run_manifest.json").exists() else {}
    except (OSError, ValueError) as exc:
        return AdapterInfo(name=folder.name, path=folder, base_model="?", problem=f"unreadable: {exc}")
    run = manifest.get("config") or {}
    data = run.get("data") or {}
    metrics = manifest.get("metrics") or {}
    return AdapterInfo(
        name=folder.name, path=folder,
        base_model=manifest.get("base_model") or config.get("base_model_name_or_path") or "?",
        trained_at=manifest.get("finished_at") or _mtime(folder / "adapter_config.json"),
        config=run.get("path"), data=data.get("out"),
        sources=[s["path"] for s in data.get("sources") or [] if isinstance(s, dict) and "path" in s],
        train_examples=metrics.get("train_examples"), eval_loss=metrics.get("eval_loss"))


def list_adapters(home: Path) -> list[AdapterInfo]:
    """The registered adapters, newest first: folders with adapter_config.json under home/adapters."""
    root = adapters_dir(home)
    if not root.is_dir():
        return []
    found = [read_adapter(p) for p in root.iterdir()
             if not p.name.startswith(".") and (p / "adapter_config.json").is_file()]
    return sorted(found, key=lambda a: (a.trained_at or "", a.name), reverse=True)


def register(folder: Path | str, home: Path, name: str | None = None) -> AdapterInfo:
    """Copy an adapter's files to home/adapters/NAME (default: the folder's name), replacing an earlier
    one of that name whole: readers see the old or the new adapter, never a mix."""
    folder = Path(folder)
    name = name or folder.resolve().name
    if not _NAME.fullmatch(name) or name.lower() in OFF_VALUES:
        raise AndiniError(f"'{name}' cannot name an adapter.",
                          hint="use letters, digits, '.', '_' and '-' (and not 'none'): --name NAME")
    if not (folder / "adapter_config.json").is_file():
        raise AndiniError(f"No PEFT adapter at {folder} (no adapter_config.json).",
                          hint="give the folder `andini finetune` wrote (train.output_dir)")
    root = adapters_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for file in ADAPTER_FILES:
        if (folder / file).is_file():
            shutil.copy2(folder / file, staging / file)
    target, old = root / name, root / f".{name}.old{os.getpid()}"
    if target.exists():
        target.replace(old)
    staging.replace(target)
    shutil.rmtree(old, ignore_errors=True)
    return read_adapter(target)


def same_base(a: str, b: str) -> bool:
    """Whether two base-model names mean one model: andini's name and its hub id, or one folder."""
    return _base_key(a) == _base_key(b)


def _base_key(name: str) -> str:
    if name in (DEFAULT_MODEL, HUB_IDS.get(DEFAULT_MODEL)):
        return DEFAULT_MODEL
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def choose(value: str | None, model: str | None, home: Path, local: bool = True,
           auto: bool = True) -> AdapterChoice:
    """Which adapter answers for the setting `value` when serving `model` (None: the default model).

    local: the model runs in this process, so a registered name means its folder, and with `auto` an
    unset value picks the newest registered adapter trained on that model. Otherwise (a server) the
    value is the adapter id sent as is, and unset means none."""
    if is_off(value):
        return AdapterChoice(adapter=None, reason="off")
    served = model or DEFAULT_MODEL
    if value is None:
        if local and auto:
            for info in list_adapters(home):
                if info.problem is None and same_base(info.base_model, served):
                    return AdapterChoice(adapter=str(info.path), name=info.name, reason="newest",
                                         base_model=info.base_model)
        return AdapterChoice(adapter=None, reason="unset")
    value = value.strip()
    if not local:
        return AdapterChoice(adapter=value, reason="set")
    registered = adapters_dir(home) / value
    if _NAME.fullmatch(value) and (registered / "adapter_config.json").is_file():
        info = read_adapter(registered)
        return AdapterChoice(adapter=str(registered), name=value, reason="set", base_model=info.base_model)
    if (Path(value).expanduser() / "adapter_config.json").is_file():
        return AdapterChoice(adapter=str(Path(value).expanduser()), reason="set",
                             base_model=read_adapter(Path(value).expanduser()).base_model)
    names = ", ".join(a.name for a in list_adapters(home)) or "none registered yet"
    raise AndiniError(f"No adapter '{value}': not a registered name ({names}) nor a folder with "
                      "adapter_config.json.",
                      hint="pick one that `andini adapters` lists, give the folder `andini finetune` wrote, "
                           "or set ANDINI_ADAPTER=none")


def train_hint(choice: AdapterChoice) -> str | None:
    """What to tell a person whose local model answers without an adapter, or None when one is active."""
    if choice.adapter is not None:
        return None
    if choice.reason == "off":
        return ("The model answers without its fine-tuned adapter (ANDINI_ADAPTER=none), so it calls "
                "tools poorly; unset it, or pick an adapter in Settings, to use one.")
    return ("Tool calls need the fine-tuned adapter, and none is trained for this model yet. "
            f"Train it (on the CPU, about half an hour) with:\n    {TRAIN_COMMAND}")


def _mtime(path: Path) -> str | None:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime))
    except OSError:
        return None

