"""Where a batch went: sites and codes reached hop by hop.

A hop is one link: an ``outbound`` to a site followed by that site's ``intake`` of
the same code, or a child code's intake naming the batch among its parents.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.rules.lineage import declaration_of
from pipeline.rules.order import event_order_key
from schemas.events import Event, Intake, Outbound


def downstream(
    start: str, histories: Mapping[str, Sequence[Event]], max_hops: int | None = None
) -> list[dict[str, Any]]:
    """Every (trace code, site) reached from ``start``'s sites, with the fewest hops.

    ``histories`` holds the events of ``start`` and of its descendants (cycle-safe:
    a code reached again is not walked twice).
    """
    hops: dict[tuple[str, str], int] = {}
    via: dict[tuple[str, str], list[str]] = {}
    queue: deque[tuple[str, str]] = deque()

    def reach(node: tuple[str, str], hop: int, links: list[str]) -> None:
        if node in hops:
            return
        hops[node] = hop
        via[node] = links
        queue.append(node)

    children = _children(histories)

    def walk() -> None:
        while queue:
            code, site = queue.popleft()
            hop = hops[(code, site)]
            events = histories.get(code, ())
            for out in events:
                if isinstance(out, Outbound) and out.site_id == site:
                    arrival = _arrival(events, out)
                    if arrival is not None:
                        reach((code, out.to_site_id), hop + 1, [out.event_id, arrival.event_id])
            for child, intake in children.get(code, ()):
                if intake.site_id == site:  # processed where the parent was
                    reach((child, intake.site_id), hop + 1, [intake.event_id])

    own = sorted(histories.get(start, ()), key=event_order_key)
    first = declaration_of(own)
    if first is not None:
        reach((start, first.site_id), 0, [first.event_id])
        walk()
    for event in own:
        # A site of the batch that no recorded outbound leads to is a start of its own.
        if isinstance(event, Intake) and (start, event.site_id) not in hops:
            reach((start, event.site_id), 0, [event.event_id])
            walk()
    # A child made at a site where its parent was never recorded hangs off the parent's
    # nearest site.
    while orphans := [
        (child, intake, min(h for (c, _), h in hops.items() if c == parent))
        for parent, made in children.items()
        if any(c == parent for c, _ in hops)
        for child, intake in made
        if (child, intake.site_id) not in hops
    ]:
        child, intake, hop = orphans[0]
        reach((child, intake.site_id), hop + 1, [intake.event_id])
        walk()
    return [
        {"trace_code": code, "site_id": site, "hop": hop, "via": via[(code, site)]}
        for (code, site), hop in sorted(hops.items(), key=lambda item: (item[1], item[0]))
        if max_hops is None or hop <= max_hops
    ]


def _arrival(events: Sequence[Event], out: Outbound) -> Intake | None:
    """The destination's intake of the code that this outbound delivered."""
    for event in events:
        if (
            isinstance(event, Intake)
            and event.site_id == out.to_site_id
            and event.from_site_id in (None, out.site_id)
        ):
            return event
    return None


def _children(histories: Mapping[str, Sequence[Event]]) -> dict[str, list[tuple[str, Intake]]]:
    """parent code -> (child code, the child's first intake naming that parent)."""
    found: dict[str, list[tuple[str, Intake]]] = {}
    for code, events in histories.items():
        seen: set[str] = set()
        for event in sorted(events, key=event_order_key):
            if isinstance(event, Intake):
                for parent in event.parent_trace_codes:
                    if parent not in seen and parent != code:
                        seen.add(parent)
                        found.setdefault(parent, []).append((code, event))
    return found


def upstream(
    start: str, histories: Mapping[str, Sequence[Event]], max_hops: int | None = None
) -> list[dict[str, Any]]:
    """The batch's own sites (hop 0), then the sites of the codes it was made from, a hop
    per generation of ``parent_trace_codes`` (cycle-safe)."""
    hops: dict[tuple[str, str], int] = {}
    via: dict[tuple[str, str], list[str]] = {}
    generation = [(start, 0, list[str]())]
    seen_codes = {start}
    while generation:
        following: list[tuple[str, int, list[str]]] = []
        for code, hop, links in generation:
            for event in sorted(histories.get(code, ()), key=event_order_key):
                if not isinstance(event, Intake):
                    continue
                node = (code, event.site_id)
                if node not in hops:
                    hops[node] = hop
                    via[node] = links or [event.event_id]
                for parent in event.parent_trace_codes:
                    if parent not in seen_codes:
                        seen_codes.add(parent)
                        following.append((parent, hop + 1, [event.event_id]))
        generation = following
    return [
        {"trace_code": code, "site_id": site, "hop": hop, "via": via[(code, site)]}
        for (code, site), hop in sorted(hops.items(), key=lambda item: (item[1], item[0]))
        if max_hops is None or hop <= max_hops
    ]
