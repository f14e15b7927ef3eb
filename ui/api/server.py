"""`andini serve`: the HTTP automation API (FastAPI; OpenAPI document at /openapi.json, UI at /docs).

Programs use it to do what a person does in the chat: run an intent and get the plan and tool calls as
JSON (or stream the agent's events as server-sent events), read plans and tasks, ingest documents and
search them. Every route except /health needs `Authorization: Bearer $ANDINI_API_TOKEN`; see
ui/api/guard.py for the token, size and rate limits. Routes are thin: each calls one library function.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from agent.turns import TurnResult
from andini import __version__
from andini.errors import AndiniError, InputError
from andini.settings import Settings, get_settings
from ui.api import guard, structured
from ui.api.models import (
    COLLECTION,
    ERRORS,
    MAX_ID,
    THREAD_ID,
    Check,
    ConfirmRequest,
    DocumentOut,
    Health,
    HitOut,
    IngestRequest,
    IngestResult,
    PlanOut,
    PlanSummary,
    Problem,
    Readiness,
    Responses,
    RunRequest,
    TaskCreate,
    TaskOut,
    TaskStatus,
    TaskUpdate,
)
from ui.api.runs import AgentRunner, sse_messages

PlanId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Plan number.")]
TaskId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Task number.")]
ThreadId = Annotated[str, PathParam(max_length=128, pattern=THREAD_ID, description="The run's thread_id.")]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No such item"}, **ERRORS}


def create_app(settings: Settings | None = None, runner: AgentRunner | None = None) -> FastAPI:
    """The API app for these settings (the token is required: no token, no app)."""
    settings = settings or get_settings()
    token = _require_token(settings)
    app = _API(title="andini automation API", version=__version__,
                  description="Intent in, validated tool calls and JSON plans out, grounded in your documents. "
                              "Authenticate with `Authorization: Bearer <ANDINI_API_TOKEN>`.")
    runner = runner or AgentRunner(settings)
    _error_handlers(app)
    _system_routes(app, settings, runner)
    _run_routes(app, runner)
    _plan_task_routes(app)
    _document_routes(app, settings)
    structured.install(app)
    guard.install(app, token=token, rate_limit=settings.api_rate_limit,
                      max_body_bytes=settings.api_max_body_bytes)
    return app


def _require_token(settings: Settings) -> str:
    if not settings.api_token or not settings.api_token.strip():
        raise AndiniError("andini serve refuses to start without a bearer token: ANDINI_API_TOKEN is not set.",
                          hint="export ANDINI_API_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    try:
        from limits import parse

        parse(settings.api_rate_limit)
    except ValueError as exc:
        raise AndiniError(f"ANDINI_API_RATE_LIMIT={settings.api_rate_limit!r} is not a rate: {exc}",
                          hint="write it like '120/minute' or '10/second'") from exc
    return settings.api_token.strip()


class _API(FastAPI):
    """The app, whose OpenAPI document also lists the Problem schema and the bearer security."""

    def openapi(self) -> dict[str, Any]:
        from fastapi.openapi.utils import get_openapi

        if self.openapi_schema is None:
            schema = get_openapi(title=self.title, version=self.version, description=self.description,
                                 routes=self.routes)
            schema["components"].setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            self.openapi_schema = guard.document_security(schema)
        return self.openapi_schema


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers, hint = dict(exc.headers or {}), None
        detail = exc.detail
        if exc.status_code == 405:  # Starlette names only the first matching route's methods
            headers["Allow"] = ", ".join(sorted(_allowed_methods(app, request.scope)))
        return JSONResponse(status_code=exc.status_code, content={"detail": detail, "hint": hint},
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": errors, "message": fields,
                                                      "hint": "fix the named fields; see /docs for the schema"})

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": exc.args[0], "hint": exc.hint})

    @app.exception_handler(AndiniError)
    async def unavailable(request: Request, exc: AndiniError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": exc.args[0], "hint": exc.hint})


def _allowed_methods(app: FastAPI, scope: Scope) -> set[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in app.router.routes:
        if route.matches(scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def _dump(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return obj


# --- health -----------------------------------------------------------------------------------------

def _system_routes(app: FastAPI, settings: Settings, runner: AgentRunner) -> None:
    @app.get("/health", response_model=Health, tags=["system"])
    def health() -> Health:
        """Liveness: the process answers. No token needed."""
        return Health(version=__version__)

    @app.get("/ready", response_model=Readiness, tags=["system"],
             responses={503: {"model": Readiness, "description": "A dependency is not ready"}})
    def ready() -> JSONResponse:
        """Readiness: the document store and the model backend answer."""
        checks = {"store": _store_check(), "model": _model_check(settings)}
        body = Readiness(ready=all(c.ok for c in checks.values()), checks=checks)
        return JSONResponse(status_code=200 if body.ready else 503, content=body.model_dump(mode="json"))


def _store_check() -> Check:
    try:
        from retrieval.store import health

        ok, detail = health()
        return Check(ok=ok, detail=detail)
    except Exception as exc:  # readiness reports any failure rather than failing itself
        return Check(ok=False, detail=f"{type(exc).__name__}: {exc}")


def _model_check(settings: Settings) -> Check:
    try:
        from agent import health

        report = health(settings)
        ok = bool(report.get("ok", False))
        return Check(ok=ok, detail=json.dumps(report, default=str))
    except Exception as exc:
        return Check(ok=False, detail=f"{type(exc).__name__}: {exc}")


# --- runs -------------------------------------------------------------------------------------------

def _run_routes(app: FastAPI, runner: AgentRunner) -> None:
    @app.post("/v1/runs", response_model=TurnResult, tags=["runs"], responses=ERRORS)
    def run(body: RunRequest) -> TurnResult:
        """Run one agent turn and return its plan, tool calls and answer as one JSON object.

        A tool call with side effects stops the turn with status `needs_confirmation` unless the request
        says `"confirm": true`; answer it with POST /v1/runs/{thread_id}/confirm.
        """
        return TurnResult.fold(runner.turn(body.intent, body.thread_id, body.confirm))

    @app.post("/v1/runs/stream", tags=["runs"], responses={
        200: {"description": "Server-sent events, one per agent event (event: kind, data: JSON)",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}}, **ERRORS})
    def run_stream(body: RunRequest):
        """The same turn as POST /v1/runs, streamed as server-sent events while it runs."""
        from sse_starlette.sse import EventSourceResponse

        events = runner.turn(body.intent, body.thread_id, body.confirm)
        return EventSourceResponse(sse_messages(events), ping=15)

    @app.post("/v1/runs/{thread_id}/confirm", response_model=TurnResult, tags=["runs"], responses=ERRORS)
    def confirm(thread_id: ThreadId, body: ConfirmRequest) -> TurnResult:
        """Approve or refuse the side-effect call a turn stopped at, and finish the turn."""
        waiting = runner.pending(thread_id)
        return TurnResult.fold(runner.resume(thread_id, body.approve), thread_id, waiting if body.approve else ())


# --- plans and tasks ----------------------------------------------------------------------------------

def _get_or_404(getter, item_id: int, what: str) -> Any:
    """The item, or a 404. The stores raise AndiniError for an unknown id; a lookup has no other failure."""
    try:
        return getter(item_id)
    except (AndiniError, LookupError):
        raise HTTPException(status_code=404, detail=f"No {what} with id {item_id}.") from None


def _plan_task_routes(app: FastAPI) -> None:
    @app.get("/v1/plans", response_model=list[PlanSummary], tags=["plans"], responses=ERRORS)
    def list_plans() -> list[Any]:
        """Every stored plan, oldest first."""
        from agent.plans import PlanStore

        return [_dump(info) for info in PlanStore().list()]

    @app.get("/v1/plans/{plan_id}", response_model=PlanOut, tags=["plans"], responses=NOT_FOUND)
    def get_plan(plan_id: PlanId) -> PlanOut:
        from agent.plans import PlanStore

        return PlanOut(id=plan_id, plan=_get_or_404(PlanStore().get, plan_id, "plan"))

    @app.get("/v1/plans/{plan_id}/export", tags=["plans"], responses={
        200: {"description": "The plan as text", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Plan"}},
            "application/yaml": {"schema": {"$ref": "#/components/schemas/Plan"}}}},
        **NOT_FOUND})
    def export_plan(plan_id: PlanId, format: str = Query("json", pattern="^(json|yaml)$")) -> PlainTextResponse:
        """The plan as JSON or YAML text, for another tool."""
        from agent.plans import PlanStore

        store = PlanStore()
        _get_or_404(store.get, plan_id, "plan")
        media = "application/json" if format == "json" else "application/yaml"
        return PlainTextResponse(store.export(plan_id, format), media_type=media)

    @app.post("/v1/plans/{plan_id}/tasks", response_model=list[TaskOut], status_code=201, tags=["plans"],
              responses=NOT_FOUND)
    def plan_to_tasks(plan_id: PlanId) -> list[Any]:
        """Turn the plan's steps into tasks in the task store."""
        from agent.plans import PlanStore

        store = PlanStore()
        _get_or_404(store.get, plan_id, "plan")
        return [_dump(t) for t in store.to_tasks(plan_id)]

    @app.get("/v1/tasks", response_model=list[TaskOut], tags=["tasks"], responses=ERRORS)
    def list_tasks(status: TaskStatus | None = None) -> list[Any]:
        from agent.tasks import TaskStore

        return [_dump(t) for t in TaskStore().list(status=status)]

    @app.post("/v1/tasks", response_model=TaskOut, status_code=201, tags=["tasks"], responses=ERRORS)
    def create_task(body: TaskCreate) -> Any:
        from agent.tasks import TaskStore

        return _dump(TaskStore().create(body.title, detail=body.detail, plan_id=body.plan_id))

    @app.get("/v1/tasks/{task_id}", response_model=TaskOut, tags=["tasks"], responses=NOT_FOUND)
    def get_task(task_id: TaskId) -> Any:
        from agent.tasks import TaskStore

        return _dump(_get_or_404(TaskStore().get, task_id, "task"))

    @app.patch("/v1/tasks/{task_id}", response_model=TaskOut, tags=["tasks"], responses=NOT_FOUND)
    def update_task(task_id: TaskId, body: TaskUpdate) -> Any:
        from agent.tasks import TaskStore

        store = TaskStore()
        _get_or_404(store.get, task_id, "task")
        return _dump(store.update(task_id, **body.model_dump(exclude_none=True)))


# --- documents and search ---------------------------------------------------------------------------

def _document_routes(app: FastAPI, settings: Settings) -> None:
    @app.post("/v1/documents", response_model=IngestResult, tags=["documents"], responses=ERRORS)
    def ingest(body: IngestRequest) -> IngestResult:
        """Add or update documents: each is saved under $ANDINI_HOME/uploads and ingested.

        Sending a document again with the same content is a no-op (`files_unchanged`).
        """
        from retrieval.ingest import ingest as ingest_paths

        folder = settings.home / "uploads" / (body.collection or settings.collection)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [_save(folder, doc.name, doc.content) for doc in body.documents]
        report = ingest_paths(paths, collection=body.collection)
        return IngestResult(**_dump(report), ok=report.ok)

    @app.get("/v1/documents", response_model=list[DocumentOut], tags=["documents"], responses=ERRORS)
    def list_documents(collection: str | None = Query(None, pattern=COLLECTION)) -> list[Any]:
        from retrieval.store import list_documents as listing

        return [_dump(d) for d in listing(collection=collection)]

    @app.get("/v1/search", response_model=list[HitOut], tags=["documents"], responses=ERRORS)
    def search(q: str = Query(min_length=1, max_length=2000, pattern=r"\S", description="The query: some words."),
               k: int | None = Query(None, ge=1, le=50, description="Number of hits (default ANDINI_SEARCH_K)."),
               mode: str | None = Query(None, pattern="^(dense|bm25|hybrid)$"),
               collection: str | None = Query(None, pattern=COLLECTION)) -> list[Any]:
        """Search the ingested documents; each hit names its source and location."""
        from retrieval.search import search as run_search

        return [_dump(h) for h in run_search(q, k=k, mode=mode, collection=collection)]




def _save(folder: Path, name: str, content: str) -> Path:
    path = folder / name  # the name pattern allows no separators, so this stays inside folder
    if not path.exists() or path.read_text(encoding="utf-8", errors="replace") != content:
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
    return path


# --- command ----------------------------------------------------------------------------------------

def main(args: argparse.Namespace) -> int:
    """`andini serve [--host H] [--port P]`: serve until interrupted."""
    import uvicorn

    settings = get_settings()
    app = create_app(settings)
    host = getattr(args, "host", None) or settings.api_host
    port = getattr(args, "port", None) or settings.api_port
    uvicorn.run(app, host=host, port=port, log_level="debug" if settings.debug else "info",
                # Longer than the usual 60 s idle timeout of proxies and clients' pools, so the server is
                # never the side that closes a kept-alive connection a client is about to reuse.
                timeout_keep_alive=75, timeout_graceful_shutdown=5)
    return 0
