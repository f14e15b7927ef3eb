"""House rules that a machine can check: ruff is clean over the whole repository, mypy over the
packages, and the packages import each other without a circle."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    out = subprocess.run([ruff, "check", "."], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


def test_mypy_is_clean():
    """The type checker over the packages, configured by pyproject's [tool.mypy] (STYLE 14)."""
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert out.returncode == 0, "\n".join(errors[:60] or [out.stdout[-3000:], out.stderr[-3000:]])


PACKAGES = ("andini", "agent", "retrieval", "finetune", "eval", "ui")


def _module_imports() -> dict[str, set[str]]:
    """Each of our modules -> our modules it imports anywhere in its text (top level or in a function)."""
    import ast

    files = {".".join(f.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): f
             for pkg in PACKAGES for f in (REPO / pkg).rglob("*.py")}

    def ours(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
        # A module importing its own package's __init__ (or the package its parent) is no circle.
        graph[name] = {m for t in targets if (m := ours(t)) and m != name and not name.startswith(m + ".")}
    return graph


def test_import_graph_has_no_circle():
    from graphlib import CycleError, TopologicalSorter

    try:
        TopologicalSorter(_module_imports()).prepare()
    except CycleError as exc:
        raise AssertionError(f"modules import each other: {' -> '.join(exc.args[1])}") from None
