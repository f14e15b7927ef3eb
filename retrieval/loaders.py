"""Finding documents and reading them into text, with a reason for every file that can't be read.

Markdown and plain text are decoded from their bytes as they are (newlines untouched), so a chunk's
character span slices the file's own text. HTML and PDF go through LlamaIndex's readers
(`HTMLTagReader`, `PDFReader`): their spans refer to the extracted text, which
`load_document(path).text` reproduces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
           ".html": "html", ".htm": "html", ".pdf": "pdf"}


class LoadError(Exception):
    """A file that can't be ingested; the message is the reason shown to the person."""


@dataclass
class Section:
    """A span of the document text that shares one heading path (a Markdown section, a PDF page)."""

    start: int
    end: int
    heading: str = ""


@dataclass
class LoadedDocument:
    """One document's text, its format, and (for PDF) page sections."""

    source: str
    format: str
    text: str
    file_hash: str
    title: str = ""
    pages: list[Section] = field(default_factory=list)


def discover(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Supported files under `paths` (sorted, de-duplicated), and the paths that can't be used.

    Folders are walked recursively, skipping hidden entries; files of other types inside folders are
    ignored, but a file named directly must be of a supported type."""
    found: dict[Path, None] = {}
    problems: list[tuple[Path, str]] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if child.is_file() and not hidden and child.suffix.lower() in FORMATS:
                    found[child.resolve()] = None
        elif path.is_file():
            if path.suffix.lower() in FORMATS:
                found[path.resolve()] = None
            else:
                kinds = ", ".join(sorted(FORMATS))
                problems.append((path, f"unsupported file type {path.suffix or '(none)'!r}; supported: {kinds}"))
        else:
            problems.append((path, "no such file or folder"))
    return sorted(found), problems


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_document(path: Path, data: bytes | None = None) -> LoadedDocument:
    """Read one file into text. Raises LoadError with the reason when it can't."""
    data = path.read_bytes() if data is None else data
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(f"unsupported file type {path.suffix!r}")
    if not data.strip():
        raise LoadError("empty file")
    doc = LoadedDocument(source=str(path), format=fmt, text="", file_hash=file_hash(data))
    if fmt == "pdf":
        _read_pdf(path, doc)
    else:
        text = _decode(data)
        if fmt == "html":
            doc.title, text = _read_html(path)
        doc.text = text
    if not doc.text.strip():
        raise LoadError("no text to index" + (" (a scanned PDF?)" if fmt == "pdf" else ""))
    return doc


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError("binary content (NUL bytes), not a text document")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}; "
                        "convert it with `iconv -t UTF-8`") from None


def _readers():
    """llama_index.readers.file, imported without the root-logger setup that one of its modules does
    at import time (it would print every library's INFO lines)."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import llama_index.readers.file as readers

    root.handlers[:] = handlers
    root.setLevel(level)
    return readers


def _read_html(path: Path) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    docs = _readers().HTMLTagReader(tag="body").load_data(path)
    text = "\n".join(d.text for d in docs if d.text.strip())
    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    if not text.strip():  # an HTML fragment without <body>
        text = soup.get_text("\n").strip()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    return title, text


def _read_pdf(path: Path, doc: LoadedDocument) -> None:
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings repeat what LoadError says
    try:
        pages = _readers().PDFReader(return_full_document=False).load_data(path)
    except Exception as exc:  # pypdf raises many types; the reader wraps them in a RetryError
        cause = exc.last_attempt.exception() if hasattr(exc, "last_attempt") else exc
        raise LoadError(f"unreadable PDF: {type(cause).__name__}: {cause}") from None
    parts: list[str] = []
    offset = 0
    for page in pages:
        text = page.text or ""
        label = page.metadata.get("page_label", str(len(doc.pages) + 1))
        doc.pages.append(Section(offset, offset + len(text), f"page {label}"))
        parts.append(text)
        offset += len(text) + 2  # the "\n\n" that joins pages
    doc.text = "\n\n".join(parts)
