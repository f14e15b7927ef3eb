"""Request and response bodies of the automation API (`andini serve`).

Requests forbid unknown keys, so a misspelt field is a 422 that names it rather than silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from andini.schema import Plan, Source

#: Document names an ingest request may use: a plain file name with a text extension, no folders.
DOCUMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.(md|markdown|txt|html|htm)$"
#: Chroma collection names this API accepts (Chroma's own rule, minus dots).
COLLECTION = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,61}[A-Za-z0-9]$"
TaskStatus = Literal["todo", "doing", "done"]
#: Conversation ids: letters, digits and . _ : - only.
THREAD_ID = r"^[A-Za-z0-9_.:-]+$"
#: Largest id a JSON client can send exactly (2**53 - 1, RFC 7493's I-JSON limit). SQLite would take up
#: to 2**63 - 1, but that bound is not a double: a validator reading JSON numbers as floats accepts
#: 2**63 + 191 under it, and the server then refuses it (schemathesis found this).
MAX_ID = 2**53 - 1


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer includes 3.0; strict mode alone would refuse it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Constraints before the validator: after it, pydantic writes them as "ge"/"le", which JSON Schema ignores.
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]


class Strict(BaseModel):
    """Request bodies take the schema literally: no unknown keys, no 0 for false or "7" for 7."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- runs -------------------------------------------------------------------------------------------

class RunRequest(Strict):
    """One agent turn: an intent in, a plan and tool calls out."""

    intent: str = Field(min_length=1, max_length=8000, pattern=r"\S", description="What the person wants, in plain words.")
    thread_id: str | None = Field(None, min_length=1, max_length=128, pattern=THREAD_ID,
                                  description="Continue this conversation; omit to start a new one.")
    confirm: bool = Field(False, description="Approve tool calls with side effects in advance. Without it, "
                          "the run stops at the first such call with status 'needs_confirmation'.")


class ConfirmRequest(Strict):
    """The answer to a run that stopped at a side-effect tool call."""

    approve: bool = Field(description="True runs the pending call; false refuses it and lets the agent go on.")


# --- plans and tasks ----------------------------------------------------------------------------------

class TaskCreate(Strict):
    title: str = Field(min_length=1, max_length=500, pattern=r"\S", description="Short title.")
    detail: str = Field("", max_length=20000, description="What to do.")
    plan_id: Id | None = Field(None, description="Plan this task came from.")


class TaskUpdate(Strict):
    title: str | None = Field(None, min_length=1, max_length=500, pattern=r"\S")
    detail: str | None = Field(None, max_length=20000)
    status: TaskStatus | None = None


class TaskOut(BaseModel):
    id: int
    title: str
    detail: str = ""
    status: TaskStatus
    plan_id: int | None = None
    created_at: datetime | str
    updated_at: datetime | str


class PlanOut(BaseModel):
    id: int = Field(description="Id in the plan store.")
    plan: Plan


class PlanSummary(BaseModel):
    id: int
    goal: str
    steps: int = Field(description="Number of steps.")
    thread_id: str | None = Field(None, description="Conversation that produced it.")
    created_at: datetime | str | None = None


# --- documents and search ---------------------------------------------------------------------------

class DocumentIn(Strict):
    name: str = Field(pattern=DOCUMENT_NAME, description="File name, e.g. 'runbook.md' (md, txt or html).")
    content: str = Field(min_length=1, pattern=r"\S", description="The document's text.")


class IngestRequest(Strict):
    documents: list[DocumentIn] = Field(min_length=1, max_length=100, description="Documents to add or update.")
    collection: str | None = Field(None, pattern=COLLECTION,
                                   description="Chroma collection (default: ANDINI_COLLECTION).")


class FileErrorOut(BaseModel):
    path: str
    reason: str


class IngestResult(BaseModel):
    files_added: int
    files_updated: int
    files_unchanged: int
    files_removed: int
    chunks_written: int
    errors: list[FileErrorOut] = Field(default_factory=list)
    ok: bool


class DocumentOut(BaseModel):
    source: str
    chunks: int
    ingested_at: datetime | str | None = None


class HitOut(BaseModel):
    chunk_id: str
    text: str
    score: float
    source: Source


# --- health -------------------------------------------------------------------------------------------

class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class Check(BaseModel):
    ok: bool
    detail: str = ""


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check]


class Problem(BaseModel):
    """Every error this API returns: what went wrong and, when known, what to do."""

    detail: Any = Field(description="What went wrong (a list of field errors for 422).")
    hint: str | None = Field(None, description="What to do about it.")
    message: str | None = Field(None, description="422 only: the fields at fault, one line.")


#: A route's documented answers by status code, as FastAPI's `responses=` takes them.
Responses = dict[int | str, dict[str, Any]]
#: What every route with a body or parameters may answer besides its own result.
ERRORS: Responses = {400: {"model": Problem, "description": "The body could not be read (not UTF-8 JSON)"},
                     422: {"model": Problem, "description": "Malformed request: `detail` names each field"}}
