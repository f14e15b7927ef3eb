"""Reading run folders back: the list the UI's evaluation page shows, and one run in full."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from andini.errors import InputError
from eval.runs import runs_root


class RunInfo(BaseModel):
    """One run folder, as listed."""

    path: Path = Field(description="The run folder.")
    name: str = Field(description="The run's label (model, adapter, options) or the folder name.")
    kind: str = Field(description="toolcalls | plans | retrieval | ...")
    created_at: str = Field(description="When the run started (UTC, ISO 8601).")
    items: int | None = Field(None, description="Items scored.")
    headline: dict[str, float] = Field(default_factory=dict,
                                       description="The overall numbers: accuracy and the like.")
    complete: bool = Field(description="False when the run stopped before writing summary.json.")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from exc


def _info(folder: Path) -> RunInfo | None:
    config_file, summary_file = folder / "config.json", folder / "summary.json"
    if not config_file.exists() and not summary_file.exists():
        return None
    config = _read_json(config_file) if config_file.exists() else {}
    summary = _read_json(summary_file) if summary_file.exists() else {}
    overall = summary.get("overall") or {}
    headline = {k: v for k, v in overall.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    created = datetime.fromtimestamp((config_file if config_file.exists() else summary_file).stat().st_mtime, UTC)
    return RunInfo(path=folder, name=str(summary.get("name") or config.get("name") or folder.name),
                   kind=str(summary.get("kind") or config.get("kind") or "unknown"),
                   created_at=created.isoformat(timespec="seconds"), items=overall.get("items"),
                   headline=headline, complete=summary_file.exists())


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Run folders under `root` (default $ANDINI_HOME/runs), newest first."""
    root = Path(root) if root else runs_root()
    if not root.is_dir():
        return []
    runs = [info for folder in root.iterdir() if folder.is_dir() and (info := _info(folder))]
    return sorted(runs, key=lambda r: (r.created_at, r.path.name), reverse=True)


def load_run(path: Path | str) -> dict[str, Any]:
    """One run: {"path", "config", "summary", "items"} (items as written, one dict per item)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError("not a run folder", path=folder, hint="give a folder that `andini eval` wrote")
    if not (folder / "summary.json").exists() and not (folder / "config.json").exists():
        raise InputError("no summary.json or config.json here: not a run folder", path=folder)
    items = []
    items_file = folder / "items.jsonl"
    if items_file.exists():
        for number, line in enumerate(items_file.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"invalid JSON: {exc.msg}", path=items_file, line=number) from exc
    config = _read_json(folder / "config.json") if (folder / "config.json").exists() else {}
    summary = _read_json(folder / "summary.json") if (folder / "summary.json").exists() else {}
    return {"path": str(folder), "config": config, "summary": summary, "items": items}
