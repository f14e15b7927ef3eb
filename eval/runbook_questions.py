"""Questions over a folder of runbooks, derived by a fixed procedure (no model, no randomness).

A person on call reads an alert's description and asks how to act on it. So, for every runbook that has a
`Meaning` section and one of the sections below:

1. The **symptom** is the first sentence of `Meaning` (a second one is added when the first has fewer than
   four content words), with Markdown removed (links keep their text, code marks and emphasis go) and
   the opening "This alert fires when" dropped.
2. Each target section gets one question from its template, e.g. `How do I fix this: <symptom>?` for
   `Mitigation`. The answer is that section, and only it: the runbook's own `Meaning` does not count.
3. **No phrase of the answer is copied into the question:** the symptom comes from another section, and a
   symptom word that would make three words in a row that also stand in a row in the target section is
   dropped. A question left with fewer than three content words is not asked. The template's own words are
   the same for every question of a section. (Dropping every shared word instead leaves BM25 nothing by
   construction and the questions unreadable; `derive` reports the share of question words that do occur
   in the answer, so the lexical overlap is on record.)

The output is deterministic: same folder, same questions (sorted by path). `derive` also reports how many
runbooks and questions it made what it dropped, and the mean share of question words found in the answer.
"""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = {
    "Mitigation": "How do I fix this: {symptom}?",
    "Diagnosis": "How do I find out what causes this: {symptom}?",
    "Impact": "What does it affect when this happens: {symptom}?",
}
MIN_WORDS = 3
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# "This alert fires when ..." is how runbooks open, not how a person asks
_BOILERPLATE = re.compile(r"^(the|this) alert( \S+)? (fires|is triggered|triggers|is raised)( when| if| by)?\s*", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\[*_])")


def derive(folder: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, int, tuple[int, int]]], dict]:
    """(documents as (relative path, text), questions as (id, text, document index, answer span), counts)
    for the runbooks under `folder`. Every
    Markdown file is a document (the distractors included); questions come from alert runbooks only."""
    from retrieval.chunking import HEADING_SEP, markdown_sections

    folder = Path(folder)
    documents: list[tuple[str, str]] = []
    questions: list[tuple[str, str, int, tuple[int, int]]] = []
    counts: dict = {"documents": 0, "runbooks": 0, "questions": 0, "too_few_words": 0}
    overlap: list[float] = []
    for path in sorted(folder.rglob("*.md")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(folder))
        documents.append((rel, text))
        counts["documents"] += 1
        sections = {s.heading.split(HEADING_SEP)[-1].strip(): s for s in markdown_sections(text)
                    if HEADING_SEP in s.heading}
        if "Meaning" not in sections or not any(t in sections for t in TEMPLATES):
            continue
        symptom = _symptom(text[sections["Meaning"].start:sections["Meaning"].end])
        if not symptom:
            continue
        counts["runbooks"] += 1
        for target, template in TEMPLATES.items():
            section = sections.get(target)
            if section is None:
                continue
            body = text[section.start:section.end]
            words = _without_copied(symptom, _trigrams(body))
            if len(_content(words)) < MIN_WORDS:
                counts["too_few_words"] += 1
                continue
            start, end = _trimmed(text, section.start, section.end)
            shared = _stems(body + " " + section.heading)
            content = _content(words)
            overlap.append(sum(_stem_of(w) in shared for w in content) / len(content))
            questions.append((f"{rel}#{target}", template.format(symptom=" ".join(words)),
                              len(documents) - 1, (start, end)))
            counts["questions"] += 1
    counts["word_overlap"] = round(sum(overlap) / len(overlap), 3) if overlap else 0.0
    return documents, questions, counts


def _symptom(section: str) -> list[str]:
    """The words of the Meaning section's first sentence (two if the first is short), Markdown removed."""
    lines = [ln for ln in section.split("\n") if ln.strip() and not ln.lstrip().startswith(("#", "```", "|", "-"))]
    prose = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", " ".join(lines))  # [text](url) -> text
    prose = re.sub(r"[`*_]", "", prose)
    prose = _BOILERPLATE.sub("", prose.strip())
    sentences = _SENTENCE_END.split(prose)
    chosen = sentences[0]
    if len(_content(chosen.split())) < 4 and len(sentences) > 1:
        chosen += " " + sentences[1]
    return [w.strip(".,;:()\"'") for w in chosen.split() if w.strip(".,;:()\"'")]


def _stems(text: str) -> set[str]:
    from retrieval.bm25 import _stem

    words = [part for token in _WORD.findall(text) for part in [token, *_CAMEL.findall(token)]]
    return {_stem(w.lower()) for w in words}


def _trigrams(text: str) -> set[tuple[str, str, str]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return set(zip(words, words[1:], words[2:], strict=False))


def _without_copied(words: list[str], trigrams: set[tuple[str, str, str]]) -> list[str]:
    """`words` less each word that would end a three-word sequence found in `trigrams`."""
    kept: list[str] = []
    tail: list[str] = []  # the last two kept tokens, lower-cased
    for word in words:
        tokens = [t.lower() for t in _WORD.findall(word)]
        if not tokens:
            continue
        seq = tail + tokens
        if any(tuple(seq[i:i + 3]) in trigrams for i in range(max(0, len(seq) - len(tokens) - 2), len(seq) - 2)):
            continue
        kept.append(word)
        tail = seq[-2:]
    return kept


def _stem_of(word: str) -> str:
    from retrieval.bm25 import _stem

    return _stem(word.lower())


def _content(words: list[str]) -> list[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return [w for w in words if w.lower() not in STOPWORDS_EN and _WORD.search(w)]


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without its surrounding white space, as chunks are stored."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
