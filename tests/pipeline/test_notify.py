"""Notifier over a real chdb store, with a recording sink in place of Alertmanager."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from connectors.kafka import partition_for
from connectors.store import LineageStore
from pipeline.notify import Notifier
from schemas.alerts import Alert
from tests.factories import T0

PARTITIONS = 4


class Recording:
    """An alert sink that keeps every post; ``hold`` makes posts wait until released."""

    def __init__(self) -> None:
        self.posts: list[list[Alert]] = []
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def post(self, alerts: Sequence[Alert]) -> None:
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        self.posts.append(list(alerts))


def alert(alert_id: str, code: str, status: str = "firing", **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "alert_id": alert_id,
        "type": "missing_disinfection",
        "severity": "critical",
        "trace_code": code,
        "site_id": "PORT",
        "occurred_at": T0,
        "detected_at": T0 + timedelta(minutes=1),
        "status": status,
        "resolved_at": T0 + timedelta(minutes=2) if status == "resolved" else None,
        "event_ids": ["ev-1"],
        "details": {},
        "rule_set": "contract-v1",
    }
    return Alert(**{**values, **fields})


def codes_by_partition(n: int) -> dict[int, list[str]]:
    """``n`` codes in each of the partitions."""
    found: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    i = 0
    while any(len(codes) < n for codes in found.values()):
        code = f"NOTIFY-{i}"
        codes = found[partition_for(code.encode(), PARTITIONS)]
        if len(codes) < n:
            codes.append(code)
        i += 1
    return found


async def test_changes_are_passed_on_as_they_come_in_order(store: LineageStore) -> None:
    sink = Recording()
    notifier = Notifier(store, sink, PARTITIONS, repost_seconds=60)
    first = [alert("a-1", "C1"), alert("a-2", "C2", status="resolved"), alert("a-3", "C1")]
    second = [alert("a-1", "C1", status="resolved")]
    await notifier.changes(first)
    await notifier.changes(second)
    assert sink.posts == [first, second]


async def test_repost_sends_the_firing_alerts_of_the_partitions_held(
    store: LineageStore,
) -> None:
    codes = codes_by_partition(2)
    held, other = 1, 2
    alerts = []
    for partition in (held, other):
        firing_code, resolved_code = codes[partition]
        alerts += [
            alert(f"fire-{partition}", firing_code),
            alert(f"fire-{partition}-b", firing_code, type="mixed_storage", severity="warning"),
            alert(f"gone-{partition}", resolved_code, status="resolved"),
        ]
    await store.insert_alerts(alerts, T0 + timedelta(minutes=3))
    sink = Recording()
    notifier = Notifier(store, sink, PARTITIONS, repost_seconds=60)

    assert await notifier.repost({held}) == 2
    assert len(sink.posts) == 1
    assert {a.alert_id for a in sink.posts[0]} == {f"fire-{held}", f"fire-{held}-b"}
    assert all(a.status == "firing" for a in sink.posts[0])

    assert await notifier.repost({held, other}) == 4
    assert {a.alert_id for a in sink.posts[1]} == {
        f"fire-{held}",
        f"fire-{held}-b",
        f"fire-{other}",
        f"fire-{other}-b",
    }
    # A held partition without firing alerts: nothing to post again.
    assert await notifier.repost({0}) == 0
    assert [a for post in sink.posts[2:] for a in post] == []


async def test_repost_with_no_partition_held_posts_nothing(store: LineageStore) -> None:
    await store.insert_alerts([alert("a-1", "C1")], T0)
    sink = Recording()
    notifier = Notifier(store, sink, PARTITIONS, repost_seconds=60)
    assert await notifier.repost(set()) == 0
    assert sink.posts == []


async def test_repost_sends_every_firing_alert_not_the_first_hundred(
    store: LineageStore,
) -> None:
    alerts = [alert(f"a-{i}", f"MANY-{i}") for i in range(150)]
    await store.insert_alerts(alerts, T0)
    sink = Recording()
    notifier = Notifier(store, sink, PARTITIONS, repost_seconds=60)
    assert await notifier.repost(set(range(PARTITIONS))) == 150
    assert {a.alert_id for a in sink.posts[0]} == {a.alert_id for a in alerts}


async def test_a_change_waits_for_a_repost_in_progress(store: LineageStore) -> None:
    """A repost's older state must not overtake a change posted meanwhile."""
    await store.insert_alerts([alert("a-1", "C1")], T0)
    sink = Recording()
    sink.hold = asyncio.Event()
    notifier = Notifier(store, sink, 1, repost_seconds=60)
    repost = asyncio.create_task(notifier.repost({0}))
    await asyncio.wait_for(sink.entered.wait(), 10)
    resolved = [alert("a-1", "C1", status="resolved")]
    change = asyncio.create_task(notifier.changes(resolved))
    await asyncio.sleep(0.05)
    assert not change.done()
    sink.hold.set()
    await asyncio.wait_for(asyncio.gather(repost, change), 10)
    assert [[a.status for a in post] for post in sink.posts] == [["firing"], ["resolved"]]
