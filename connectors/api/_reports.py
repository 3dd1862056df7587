"""`GET /v1/reports/compliance`: per site and week, JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from connectors.api._context import Context
from pipeline.rules.compliance import REPORT_TZ, compliance
from schemas.alerts import ALERT_TYPES

#: The report's default span when `from` is not given.
DEFAULT_SPAN = timedelta(weeks=4)

Moment = Annotated[
    str | None,
    Query(description="A date (YYYY-MM-DD, China Standard Time) or an RFC 3339 date-time."),
]


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), REPORT_TZ)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name} must be YYYY-MM-DD or an RFC 3339 date-time") from None
    if moment.utcoffset() is None:
        raise HTTPException(422, f"{name} needs a UTC offset, e.g. 2026-11-01T00:00:00+08:00")
    return moment


def _csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    columns = [
        "site_id",
        "week_start",
        "reported",
        "events",
        "imported_batches_received",
        "imported_batches_released",
        "share_disinfected_before_release",
        "share_tested_before_release",
        *(f"alerts_{kind}" for kind in ALERT_TYPES),
    ]
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        alerts = row["alerts"]
        assert isinstance(alerts, dict)
        flat = {**row, **{f"alerts_{kind}": alerts[kind] for kind in ALERT_TYPES}}
        writer.writerow(["" if flat[c] is None else flat[c] for c in columns])
    return out.getvalue()


def install(app: FastAPI, ctx: Context) -> None:
    @app.get("/v1/reports/compliance", tags=["reports"])
    async def compliance_report(
        request: Request,
        from_: Annotated[Moment, Query(alias="from")] = None,
        to: Moment = None,
        site_id: str | None = None,
        format: Literal["json", "csv"] = "json",
    ) -> Response:
        """Per site and ISO week (China Standard Time): imported batches received and
        released, the share disinfected and tested before release, alerts by type, and
        every known site that reported nothing that week (`reported: false`)."""
        principal = ctx.principal(request)
        end = _moment(to, "to") or ctx.clock()
        start = _moment(from_, "from") or end - DEFAULT_SPAN
        if start >= end:
            raise HTTPException(422, "from must be before to")
        store = ctx.store
        if principal.role == "site":
            if site_id is not None and site_id not in principal.sites:
                raise HTTPException(403, f"this token may not read site {site_id!r}")
            sites = [site_id] if site_id else sorted(principal.sites)
        else:
            sites = [site_id] if site_id else await store.sites()
        in_range = await store.events_between(start, end, sites)
        histories = await store.events_of_many(sorted({e.trace_code for e in in_range}))
        rows = compliance(
            sites,
            start,
            end,
            in_range,
            histories,
            await store.alerts_between(start, end, sites),
            ctx.backend().rules.imported_origins,
        )
        if format == "csv":
            return Response(
                _csv(rows),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="compliance.csv"'},
            )
        body = {
            "from": start.astimezone(UTC).isoformat(),
            "to": end.astimezone(UTC).isoformat(),
            "week_starts_on": "Monday, China Standard Time (+08:00)",
            "rows": rows,
            "silent": [
                {"site_id": r["site_id"], "week_start": r["week_start"]}
                for r in rows
                if not r["reported"]
            ],
        }
        return Response(orjson.dumps(body), media_type="application/json")
