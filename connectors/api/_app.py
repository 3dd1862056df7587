"""The HTTP API of contract section 3."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime
from starlette.exceptions import HTTPException

from connectors.api import _exports, _reports, _trace, _ui
from connectors.api._body import BadBody, BodyTooLarge, parse_items, read_capped
from connectors.api._context import Backend, Context
from connectors.auth import TokenRegistry
from connectors.ingest import ConflictingEvents
from connectors.metrics import CONFLICTS, UNKNOWN, count_rejected, event_type_label
from connectors.metrics import initialise as initialise_metrics
from connectors.store import AlertFilter
from pipeline.rules.lineage import build_lineage
from schemas.alerts import AlertType
from schemas.events import Event, FieldError, InvalidEvents, validate_event

log = logging.getLogger(__name__)


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_api(
    backend: Callable[[], Backend],
    *,
    tokens: TokenRegistry | None,
    clock: Callable[[], datetime],
    lifespan: Lifespan,
    title: str = "coldchain",
) -> FastAPI:
    """The API; with ``tokens=None`` only /healthz and /metrics (a worker's own server).

    ``backend`` is called per request: the running system exists only inside the lifespan.
    """
    app = FastAPI(
        title=title,
        summary="进口冷链食品追溯 Imported cold-chain food traceability",
        lifespan=lifespan,
    )
    _install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        checks = await backend().health()
        up = all(checks.values())
        return JSONResponse(
            {"status": "ok" if up else "down", "checks": checks}, 200 if up else 503
        )

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if tokens is not None:
        # A site with a token may push before the store knows it: its counters start at 0.
        initialise_metrics(sites=tokens.sites)
        _ui.install(app)
        _install_v1(app, Context(backend, tokens, clock))
    return app


def _install_v1(app: FastAPI, ctx: Context) -> None:
    backend, clock, principal_of = ctx.backend, ctx.clock, ctx.principal
    _trace.install(app, ctx)
    _reports.install(app, ctx)

    @app.post("/v1/events", status_code=202, tags=["events"])
    async def post_events(request: Request) -> JSONResponse:
        """Push events: one JSON event, a JSON array, or NDJSON (application/x-ndjson).

        All or nothing. 202 only once every event is safe (see the README).
        """
        try:
            principal = principal_of(request)
        except HTTPException:
            # Only refused pushes count as rejected events; a refused read is not one.
            count_rejected("unauthorized", [(UNKNOWN, UNKNOWN)])
            raise

        def labels(site_id: object, event_type: object) -> tuple[str, str]:
            site = site_id if isinstance(site_id, str) and principal.may_push(site_id) else UNKNOWN
            return site, event_type_label(event_type)

        try:
            body = await read_capped(request.stream(), request.headers.get("content-length"))
            items, errors = parse_items(body, request.headers.get("content-type", ""))
        except BodyTooLarge:
            count_rejected("too_large", [(UNKNOWN, UNKNOWN)])
            return _error(413, "too large: at most 10,000 events and 16 MiB per request")
        except BadBody as exc:
            count_rejected("invalid", [(UNKNOWN, UNKNOWN)])
            return _invalid(exc.errors)
        unparsed = len(errors)
        now = clock()
        events: list[Event] = []
        for index, raw in items:
            try:
                events.append(validate_event(raw, now, index))
            except InvalidEvents as exc:
                errors.extend(exc.errors)
        if errors:
            # All or nothing: every event of the request is refused, each counted once.
            count_rejected(
                "invalid",
                [
                    *(labels(_get(raw, "site_id"), _get(raw, "event_type")) for _, raw in items),
                    *[(UNKNOWN, UNKNOWN)] * unparsed,
                ],
            )
            return _invalid(sorted(errors, key=lambda e: e.index or 0))
        foreign = [
            {"index": i, "event_id": e.event_id, "site_id": e.site_id}
            for i, e in enumerate(events)
            if not principal.may_push(e.site_id)
        ]
        if foreign:
            count_rejected("forbidden", [labels(e.site_id, e.event_type) for e in events])
            return _error(403, "this token may not push events for these sites", events=foreign)
        try:
            result = await backend().ingestor.accept(events)
        except ConflictingEvents as exc:
            count_rejected("conflict", [labels(e.site_id, e.event_type) for e in events])
            CONFLICTS.labels("api").inc(len(exc.conflicts))
            return _error(
                409,
                "event_id already stands with different content; the first version stands",
                conflicts=[{"index": c.index, "event_id": c.event_id} for c in exc.conflicts],
            )
        except Exception:
            log.exception("could not make %d events safe", len(events))
            return _error(
                503,
                "the broker or the spool did not take the events; resend them with the "
                "same event_ids (duplicates are harmless)",
            )
        return JSONResponse(
            {"accepted": result.accepted, "duplicates": result.duplicates}, status_code=202
        )

    @app.get("/v1/batches/{trace_code}", tags=["batches"])
    async def get_batch(trace_code: str, request: Request) -> Response:
        """A batch's lineage: declaration, events, stock per site and zone, certificates."""
        events = await ctx.readable_batch(principal_of(request), trace_code)
        store = ctx.store
        alerts = sorted(
            await store.alerts_of([trace_code]), key=lambda a: (a.occurred_at, a.alert_id)
        )
        lineage = build_lineage(trace_code, events, await store.children_of(trace_code), alerts)
        return Response(lineage.model_dump_json(), media_type="application/json")

    @app.get("/v1/alerts", tags=["alerts"])
    async def list_alerts(
        request: Request,
        type: AlertType | None = None,
        site_id: str | None = None,
        trace_code: str | None = None,
        status: Literal["firing", "resolved"] | None = None,
        since: AwareDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """Alerts, most recently detected first. ``since`` (RFC 3339) bounds detected_at.

        A site token sees the alerts raised at its own sites.
        """
        principal = principal_of(request)
        site_ids: list[str] | None = None if site_id is None else [site_id]
        if principal.role == "site":
            if site_id is not None and site_id not in principal.sites:
                return _error(403, f"this token may not read alerts of site {site_id!r}")
            site_ids = site_ids or sorted(principal.sites)
        alerts = await backend().store.list_alerts(
            AlertFilter(
                type=type,
                site_ids=site_ids,
                trace_code=trace_code,
                status=status,
                since=since,
                limit=limit,
            )
        )
        body = b"[" + b",".join(a.__pydantic_serializer__.to_json(a) for a in alerts) + b"]"
        return Response(b'{"alerts":' + body + b"}", media_type="application/json")

    _exports.install(app, ctx)


def _invalid(errors: list[FieldError]) -> JSONResponse:
    return JSONResponse(
        {
            "error": f"{len(errors)} problem(s) in the submitted events; nothing was accepted",
            "errors": [e.model_dump() for e in errors],
        },
        status_code=422,
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = orjson.loads(orjson.dumps(exc.errors(), default=str))
        return _error(422, "invalid request parameters", errors=details)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; the server log has the details")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


def _get(raw: object, field: str) -> object:
    return raw.get(field) if isinstance(raw, dict) else None
