"""Tracing a batch up and downstream, and what a regulator would freeze."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response

from connectors.api._context import Context
from pipeline.reach import ancestors, descendants, neighbours
from pipeline.rules.stock import zone_stocks
from pipeline.rules.trace import downstream, upstream
from pipeline.rules.zones import co_stored
from schemas.events import Event

#: "Up to now and beyond": a trace's co-storage is not cut off by a test.
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)

MaxHops = Annotated[int | None, Query(ge=0, le=1000, description="Default: unlimited.")]


def _json(body: Mapping[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _on_hand(events: Sequence[Event], site_id: str) -> float:
    here = [e for e in events if e.site_id == site_id]
    return float(sum((s.on_hand for s in zone_stocks(here)), Decimal(0)))


async def _co_stored_with(
    ctx: Context, reached: list[dict[str, Any]], histories: Mapping[str, Sequence[Event]]
) -> list[dict[str, Any]]:
    """Batches that shared a zone, at an overlapping time, with any reached batch."""
    found: list[dict[str, Any]] = []
    reached_codes = {node["trace_code"] for node in reached}
    mine = {code: histories[code] for code in reached_codes}
    for site_id, histories_there in sorted((await neighbours(ctx.store, mine)).items()):
        for code in mine:
            for row in co_stored(code, site_id, histories_there, _FAR_FUTURE):
                if row["trace_code"] not in reached_codes:
                    found.append({**row, "with_trace_code": code})
    return found


def _codes(reached: list[dict[str, Any]]) -> list[dict[str, Any]]:
    hops: dict[str, int] = {}
    for node in reached:
        hops.setdefault(node["trace_code"], node["hop"])
    return [{"trace_code": code, "hop": hop} for code, hop in hops.items()]


def install(app: FastAPI, ctx: Context) -> None:
    @app.get("/v1/batches/{trace_code}/trace", tags=["batches"])
    async def trace(
        trace_code: str,
        request: Request,
        direction: Literal["downstream", "upstream"] = "downstream",
        max_hops: MaxHops = None,
    ) -> Response:
        """Sites and trace codes reached hop by hop, and batches co-stored with any of them.

        downstream: outbound -> the destination's intake of the same code, and child
        codes (any depth); upstream: the batch's own sites, then the codes it was made
        from, a hop per generation. Each node names the events that link it (``via``).
        """
        events = await ctx.readable_batch(ctx.principal(request), trace_code)
        if direction == "downstream":
            histories = await descendants(ctx.store, trace_code, events)
            reached = downstream(trace_code, histories, max_hops)
        else:
            histories = await ancestors(ctx.store, trace_code, events)
            reached = upstream(trace_code, histories, max_hops)
        return _json(
            {
                "trace_code": trace_code,
                "direction": direction,
                "max_hops": max_hops,
                "sites": reached,
                "trace_codes": _codes(reached),
                "co_stored": await _co_stored_with(ctx, reached, histories),
            }
        )

    @app.get("/v1/batches/{trace_code}/exposure", tags=["batches"])
    async def exposure(trace_code: str, request: Request) -> Response:
        """What to freeze: every site and code the batch reached downstream, every batch
        stored beside any of them and where those went, each with the kilograms still
        on hand there."""
        events = await ctx.readable_batch(ctx.principal(request), trace_code)
        histories = await descendants(ctx.store, trace_code, events)
        reached = downstream(trace_code, histories)
        for node in reached:
            node["on_hand_kg"] = _on_hand(histories[node["trace_code"]], node["site_id"])
        neighbours = await _co_stored_with(ctx, reached, histories)
        beside = await ctx.store.events_of_many([row["trace_code"] for row in neighbours])
        for row in neighbours:
            row["on_hand_kg"] = _on_hand(beside[row["trace_code"]], row["site_id"])
        onward: list[dict[str, Any]] = []
        for code, own in beside.items():
            theirs = await descendants(ctx.store, code, own)
            for node in downstream(code, theirs):
                node["on_hand_kg"] = _on_hand(theirs[node["trace_code"]], node["site_id"])
                onward.append({**node, "from_trace_code": code})
        freeze: dict[tuple[str, str], float] = {}
        for node in [*reached, *neighbours, *onward]:
            if node["on_hand_kg"] > 0:
                freeze[(node["trace_code"], node["site_id"])] = node["on_hand_kg"]
        return _json(
            {
                "trace_code": trace_code,
                "downstream": reached,
                "co_stored": neighbours,
                "co_stored_downstream": onward,
                "freeze": [
                    {"trace_code": code, "site_id": site, "on_hand_kg": kg}
                    for (code, site), kg in sorted(freeze.items())
                ],
            }
        )
