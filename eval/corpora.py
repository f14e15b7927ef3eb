"""Retrieval corpora: documents, questions, and where in each document a question's answer lies.

Two kinds are read:
- **squad**: a SQuAD-format JSON file (COVID-QA, SQuAD itself): each paragraph's `context` becomes a text
  document, and an answer is its character span in that context.
- **runbooks**: a folder of Markdown runbooks (Meaning / Impact / Diagnosis / Mitigation). Its questions
  are derived from the documents by `eval.runbook_questions` (written procedure, no model, deterministic),
  and an answer is the span of the section that answers it.

`--dataset` takes `PATH` or `NAME=PATH`; a folder is read as runbooks, a file as SQuAD.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from andini.errors import InputError
from eval.runbook_questions import derive

FORMATS = ("auto", "squad", "runbooks")


@dataclass
class Question:
    id: str
    text: str
    context: int  # index of its document
    answers: list[tuple[int, int]]  # character spans in that document


@dataclass
class Corpus:
    """Documents (relative file name, text) and the questions asked over them."""

    name: str
    path: Path
    kind: str
    documents: list[tuple[str, str]]
    questions: list[Question]
    notes: dict = field(default_factory=dict)


def parse_spec(spec: str) -> tuple[str, Path]:
    """`NAME=PATH` or `PATH` (the name is then the file's or folder's stem)."""
    name, sep, rest = spec.partition("=")
    if sep and name and "/" not in name:
        return name, Path(rest).expanduser()
    path = Path(spec).expanduser()
    return path.stem or path.name, path


def load_corpus(spec: str, fmt: str = "auto", limit: int | None = None, seed: int = 0) -> Corpus:
    """The corpus at `spec`; with `limit`, a seeded sample of that many questions (same seed, same sample)."""
    name, path = parse_spec(spec)
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    kind = fmt if fmt != "auto" else ("runbooks" if path.is_dir() else "squad")
    if kind == "runbooks":
        documents, derived, notes = derive(path)
        questions = [Question(qid, text, doc, [span]) for qid, text, doc, span in derived]
    else:
        contexts, questions = read_squad(path)
        documents, notes = [(f"context-{i:05d}.txt", c) for i, c in enumerate(contexts)], {}
    if limit and limit < len(questions):
        questions = sorted(random.Random(seed).sample(questions, limit), key=lambda q: (q.context, q.id))
    return Corpus(name, path, kind, documents, questions, notes)


def read_squad(path: Path) -> tuple[list[str], list[Question]]:
    """Contexts and answerable questions of a SQuAD-format file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError("not SQuAD format: no top-level 'data' list", path=path, field="data")
    contexts: list[str] = []
    questions: list[Question] = []
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            if not isinstance(paragraph.get("context"), str):
                raise InputError("paragraph without a 'context' string", path=path,
                                 field=f"data[{a}].paragraphs[{p}].context")
            context = paragraph["context"]
            contexts.append(context)
            for qa in paragraph.get("qas", []):
                spans = [(ans["answer_start"], ans["answer_start"] + len(ans["text"]))
                         for ans in qa.get("answers", []) if ans.get("text")]
                if spans and not qa.get("is_impossible"):
                    questions.append(Question(str(qa["id"]), qa["question"], len(contexts) - 1, spans))
    if not questions:
        raise InputError("no answerable questions", path=path, field="data[].paragraphs[].qas")
    return contexts, questions


def squad_subset(source: Path, dest: Path, articles: int) -> dict[str, int]:
    """Write the first `articles` articles of a SQuAD-format file to `dest` (a smaller corpus that keeps whole
    articles, so every question's distractors from its own article stay). Returns its counts."""
    contexts, _ = read_squad(source)  # validates the source
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    kept = data["data"][:articles]
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    Path(dest).write_text(json.dumps({"version": data.get("version", ""), "data": kept}), encoding="utf-8")
    paragraphs = [p for a in kept for p in a.get("paragraphs", [])]
    return {"articles": len(kept), "paragraphs": len(paragraphs),
            "questions": sum(len(p.get("qas", [])) for p in paragraphs), "source_paragraphs": len(contexts)}
