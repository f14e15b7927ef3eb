"""Structured-output routes of the automation API: POST /v1/generate (a document valid against the
caller's JSON Schema) and the plan runs (POST /v1/plans/{id}/run). Each calls one library function;
the token, size and rate limits are ui/api/guard.py's, as for every route."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from agent.executor import PlanRun, RunInProgress
from agent.generate import DEFAULT_ATTEMPTS, Generated, GenerationFailed
from ui.api.models import COLLECTION, ERRORS, MAX_ID, Problem, Responses, Strict

#: A schema sent over HTTP is held to references inside itself (see `load_schema(files=False)`).
REQUEST_SCHEMA = "request schema"


class GenerateRequest(Strict):
    """Intent in, a document valid against `schema` out."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    json_schema: dict[str, Any] = Field(alias="schema", description="A JSON Schema (draft 2020-12); `$ref`s "
                                        "must point inside it ('#/$defs/...').")
    intent: str = Field(min_length=1, max_length=8000, pattern=r"\S", description="What the document should say.")
    yaml: bool = Field(False, description="Return `text` as YAML (the same data as `document`).")
    search: bool = Field(False, description="Ground the document in the knowledge base; `passages` says what it used.")
    k: int = Field(4, ge=1, le=20, description="Passages to retrieve with `search`.")
    collection: str | None = Field(None, pattern=COLLECTION, description="Collection to search.")
    attempts: int = Field(DEFAULT_ATTEMPTS, ge=1, le=5, description="Model calls before giving up.")
    max_new_tokens: int | None = Field(None, ge=16, le=4096, description="Generation limit per attempt.")
    strict_grammar: bool = Field(False, description="Refuse a schema with keywords the grammar cannot honour "
                                                    "instead of holding them by validation and retry.")
    allow_decline: bool = Field(False, description="Let the model answer that the schema cannot express the "
                                                   "intent (`declined` then says why and `document` is null).")


class GenerationProblem(Problem):
    """No valid document after every attempt: the last output and its errors."""

    attempts: int | None = Field(None, description="Model calls made.")
    errors: list[str] = Field(default_factory=list, description="Why the last output is not valid.")
    last_output: str | None = Field(None, description="What the model last wrote.")
    kind: Literal["generation_failed"] | None = None


class PlanRunRequest(Strict):
    """Run a stored plan's tool calls, or continue its last run from where it stopped."""

    approve: bool = Field(False, description="Approve the steps with side effects in advance. Without it, "
                                             "the run stops at the first such step with status "
                                             "'needs_confirmation'; send the request again with true to go on.")
    restart: bool = Field(False, description="Start a new run at step 1 instead of continuing the last one.")


PlanId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Plan number.")]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No such plan, or no run of it yet"}, **ERRORS}


def install(app: FastAPI) -> None:
    _generate_route(app)
    _plan_run_routes(app)


def _plan_run_routes(app: FastAPI) -> None:
    @app.exception_handler(RunInProgress)
    async def busy(request: Request, exc: RunInProgress) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": exc.args[0], "hint": exc.hint})

    @app.post("/v1/plans/{plan_id}/run", response_model=PlanRun, tags=["plans"], responses={
        **NOT_FOUND, 409: {"model": Problem, "description": "The plan's run is being carried out right now"}})
    def run_plan(plan_id: PlanId, body: PlanRunRequest) -> PlanRun:
        """Carry out the plan's tool calls step by step (or continue its last run) and return the run.

        Each call is validated against its tool's schema first; `$varN.field$` takes a field of step N's
        result. A failed step stops the run (`status` failed, `stopped_at`, `error`); sending the request
        again continues from that step. Side-effect steps wait for `approve`, whatever the server's
        ANDINI_CONFIRM_SIDE_EFFECTS says."""
        from agent.executor import run_plan as run

        _plan_or_404(plan_id)
        return run(plan_id, approve=(lambda step, call: True) if body.approve else None, confirm=True,
                   restart=body.restart)

    @app.get("/v1/plans/{plan_id}/run", response_model=PlanRun, tags=["plans"], responses=NOT_FOUND)
    def last_run(plan_id: PlanId) -> PlanRun:
        """The plan's latest run: each step's status and result, and where it stopped."""
        from agent.executor import latest_run

        _plan_or_404(plan_id)
        found = latest_run(plan_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"Plan {plan_id} has not been run yet.")
        return found


def _plan_or_404(plan_id: int) -> None:
    from agent.plans import PlanStore
    from andini.errors import AndiniError

    try:
        PlanStore().get(plan_id)
    except AndiniError:
        raise HTTPException(status_code=404, detail=f"No plan with id {plan_id}.") from None


def _generate_route(app: FastAPI) -> None:
    @app.exception_handler(GenerationFailed)
    async def failed(request: Request, exc: GenerationFailed) -> JSONResponse:
        body = GenerationProblem(detail=exc.args[0], hint=exc.hint, attempts=exc.attempts, errors=exc.errors,
                                 last_output=exc.last_output, kind="generation_failed")
        return JSONResponse(status_code=422, content=body.model_dump(mode="json"))

    @app.post("/v1/generate", response_model=Generated, tags=["generate"], responses={
        400: {"model": Problem, "description": "The body could not be read, or the schema is not a JSON "
                                               "Schema, or a `$ref` does not resolve: `detail` names the "
                                               "JSON pointer"},
        422: {"model": GenerationProblem, "description": "Malformed request, or no valid document after "
                                                         "every attempt (`kind`: generation_failed)"}})
    def generate(body: GenerateRequest) -> Generated:
        """A document for the intent that validates against the schema, as JSON and as `text`.

        `enforcement` says how the schema was held (the decoder's grammar, or validation and retry
        for keywords it cannot honour, listed in `unenforced` with their JSON pointers)."""
        from agent.generate import generate as run
        from andini.docschema import load_schema

        doc = load_schema(body.json_schema, name=REQUEST_SCHEMA, files=False)
        return run(doc, body.intent, yaml=body.yaml, search=body.search, k=body.k, collection=body.collection,
                   attempts=body.attempts, max_new_tokens=body.max_new_tokens, strict=body.strict_grammar,
                   allow_decline=body.allow_decline)
