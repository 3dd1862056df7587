"""`GET /v1/batches/{trace_code}/export`: FSMA 204 CSV or EPCIS 2.0 JSON-LD."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from connectors.api._context import Context
from connectors.exports import FSMA204_EVENTS, epcis_document, fsma204_csv, parents_of
from connectors.exports._fsma204 import FsmaEvent
from schemas.events import Event

FORMATS = ("fsma204", "epcis")


def _bad_parameter(name: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "parameter": name}, status_code=422)


async def _histories(ctx: Context, trace_code: str, events: list[Event]) -> dict[str, list[Event]]:
    """The batch's events and those of its parents, children and siblings.

    The exports read of the related codes only the transformations the batch was in
    and what its parents released into them (see ``connectors.exports``).
    """
    store = ctx.store
    parents = parents_of(events)
    related = [*parents, *await store.children_of(trace_code)]
    for parent in parents:
        related += await store.children_of(parent)
    codes = [c for c in dict.fromkeys(related) if c != trace_code]
    histories = await store.events_of_many(codes) if codes else {}
    return {**histories, trace_code: events}


def install(app: FastAPI, ctx: Context) -> None:
    @app.get("/v1/batches/{trace_code}/export", tags=["batches"])
    async def export(
        trace_code: str,
        request: Request,
        format: Annotated[
            str | None, Query(description="fsma204 (CSV) or epcis (EPCIS 2.0 JSON-LD).")
        ] = None,
        event: Annotated[
            str | None,
            Query(
                description="fsma204 only: receiving, shipping or transformation for that one "
                "tab with exactly FDA's headers. Default: one combined CSV."
            ),
        ] = None,
    ) -> Response:
        """The batch's lineage as an FDA FSMA 204 sortable spreadsheet (CSV) or as a GS1
        EPCIS 2.0 document (application/ld+json); see the README, "Exports"."""
        principal = ctx.principal(request)
        if format not in FORMATS:
            return _bad_parameter("format", "format must be fsma204 or epcis")
        if event is not None and (format != "fsma204" or event not in FSMA204_EVENTS):
            return _bad_parameter(
                "event", "event must be receiving, shipping or transformation (format=fsma204)"
            )
        events = await ctx.readable_batch(principal, trace_code)
        histories = await _histories(ctx, trace_code, events)
        if format == "epcis":
            document = epcis_document(trace_code, histories, ctx.clock())
            return Response(
                orjson.dumps(document),
                media_type="application/ld+json",
                headers={
                    "Content-Disposition": f'attachment; filename="{trace_code}-epcis.jsonld"'
                },
            )
        tab: FsmaEvent | None = next((e for e in FSMA204_EVENTS if e == event), None)
        name = f"{trace_code}-fsma204{'-' + tab if tab else ''}.csv"
        return Response(
            fsma204_csv(trace_code, histories, tab),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
