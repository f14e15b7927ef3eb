"""Splitting a document into chunks that know where they came from.

LlamaIndex does the splitting: `MarkdownNodeParser` cuts Markdown at headings, then `SentenceSplitter`
cuts each section to `chunk_size` tokens of the embedding model (so no chunk is longer than what the
model reads) with `chunk_overlap` tokens of overlap. The parsers may trim or rebuild text, so every
chunk is located back in the original and its text is taken as that exact slice: `text ==
document.text[start:end]` always holds, which is what makes citations exact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from andini.settings import Settings, get_settings
from retrieval.loaders import LoadedDocument, Section

HEADING_SEP = " > "


@dataclass
class Chunk:
    """A piece of a document: its exact text, its span in the document, and its heading path."""

    index: int
    text: str
    start: int
    end: int
    heading: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def chunk_document(doc: LoadedDocument, settings: Settings | None = None) -> list[Chunk]:
    """The document's chunks, in order."""
    from llama_index.core.node_parser import SentenceSplitter

    from retrieval.embed import tokenize_fn

    settings = settings or get_settings()
    splitter = SentenceSplitter(chunk_size=settings.chunk_size,
                                chunk_overlap=min(settings.chunk_overlap, settings.chunk_size // 2),
                                tokenizer=tokenize_fn(settings))
    if doc.format == "markdown":
        sections = markdown_sections(doc.text)
    elif doc.pages:
        sections = doc.pages
    else:
        sections = [Section(0, len(doc.text), doc.title)]
    chunks: list[Chunk] = []
    for section in sections:
        body = doc.text[section.start:section.end]
        for start, end in _locate(body, splitter.split_text(body)):
            chunks.append(Chunk(len(chunks), doc.text[section.start + start:section.start + end],
                                section.start + start, section.start + end, section.heading))
    return chunks


def markdown_sections(text: str) -> list[Section]:
    """Sections of a Markdown text as spans, each with its full heading path ("A > B > C").

    Sections with no body (a heading alone, front matter) are merged into the next one, so that a
    chunk never holds a bare title."""
    from llama_index.core import Document
    from llama_index.core.node_parser import MarkdownNodeParser
    from llama_index.core.schema import TextNode

    nodes = MarkdownNodeParser(header_path_separator=HEADING_SEP, include_prev_next_rel=False) \
        .get_nodes_from_documents([Document(text=text)])
    starts: list[tuple[int, str]] = []
    for node in nodes:
        # the parser makes TextNodes; one without a start is text it rebuilt: stays with the previous section
        if not isinstance(node, TextNode) or node.start_char_idx is None:
            continue
        parents = [h for h in node.metadata.get("header_path", "").split(HEADING_SEP) if h.strip()]
        first_line = node.text.split("\n", 1)[0]
        own = first_line.lstrip("#").strip() if first_line.startswith("#") else None
        starts.append((node.start_char_idx, HEADING_SEP.join(parents + ([own] if own else []))))
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, ""))
    sections = [Section(start, next_start, heading) for (start, heading), (next_start, _) in
                zip(starts, starts[1:] + [(len(text), "")], strict=True)]
    merged: list[Section] = []
    pending: int | None = None
    for section in sections:
        start = section.start if pending is None else pending
        if not _has_body(text[section.start:section.end]) and section is not sections[-1]:
            pending = start
            continue
        merged.append(Section(start, section.end, section.heading))
        pending = None
    return [s for s in merged if text[s.start:s.end].strip()]


def _has_body(section_text: str) -> bool:
    stripped = section_text.strip()
    if stripped.startswith("---\n") and stripped.endswith("---"):  # YAML front matter alone
        return False
    return any(line.strip() and not line.startswith("#") for line in stripped.split("\n"))


def _locate(body: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Spans of the splitter's pieces in `body`, in order; overlapping pieces are found after the
    previous piece's start. A piece the splitter altered is placed by its first and last words."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        start = body.find(piece, cursor)
        if start >= 0:
            end = start + len(piece)
        else:
            head, tail = piece[:40], piece[-40:]
            start = body.find(head, cursor)
            start = start if start >= 0 else (spans[-1][1] if spans else 0)
            tail_at = body.find(tail, start)
            end = tail_at + len(tail) if tail_at >= 0 else min(len(body), start + len(piece))
        spans.append((start, end))
        cursor = start + 1
    return spans
