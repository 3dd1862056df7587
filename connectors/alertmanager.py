"""Alerts to Alertmanager's v2 API (``POST /api/v2/alerts``), so that people are paged.

A firing alert is posted without ``endsAt``: Alertmanager then keeps it for its
``resolve_timeout`` and the worker posts it again well within that. A resolved
alert is posted with ``endsAt`` (when the rules resolved it). Alertmanager
deduplicates by labels, so posting an alert again is harmless; that is what lets a
failed post simply be retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final
from urllib.parse import quote

import httpx
import orjson

from connectors.metrics import ALERTMANAGER_POSTS, ALERTMANAGER_UNDELIVERED
from schemas.alerts import ALERT_TITLES, Alert

log = logging.getLogger(__name__)

#: Alerts per request: Alertmanager takes any number, but a smaller body fails smaller.
CHUNK: Final = 500
FIRST_BACKOFF_SECONDS: Final = 0.5
MAX_BACKOFF_SECONDS: Final = 30.0


def to_alertmanager(alert: Alert, console_url: str) -> dict[str, object]:
    """The alert as Alertmanager's v2 API takes it."""
    zh, en = ALERT_TITLES[alert.type]
    link = f"{console_url.rstrip('/')}/ui?code={quote(alert.trace_code, safe='')}"
    labels = {
        "alertname": alert.type,
        "type": alert.type,
        "severity": alert.severity,
        "trace_code": alert.trace_code,
        "site_id": alert.site_id,
        # Two alerts may share all of the above (mixed storage with two domestic batches).
        "alert_id": alert.alert_id,
        "source": "coldchain",
    }
    if alert.zone_id:
        labels["zone_id"] = alert.zone_id
    where = alert.site_id + (f" / {alert.zone_id}" if alert.zone_id else "")
    body: dict[str, object] = {
        "labels": labels,
        "annotations": {
            "summary": f"{zh} / {en}: {alert.trace_code} @ {where}",
            "description": (
                f"追溯码 {alert.trace_code} 在 {where} {zh}（事件发生于 "
                f"{alert.occurred_at.isoformat()}）。/ Trace code {alert.trace_code} at "
                f"{where}: {en} (event at {alert.occurred_at.isoformat()})."
            ),
            "console": link,
            "occurred_at": alert.occurred_at.isoformat(),
            "event_ids": ",".join(alert.event_ids),
            "rule_set": alert.rule_set,
        },
        "startsAt": alert.detected_at.isoformat(),
        "generatorURL": link,
    }
    if alert.status == "resolved" and alert.resolved_at is not None:
        body["endsAt"] = alert.resolved_at.isoformat()
    return body


class AlertmanagerSink:
    """Posts alerts until Alertmanager takes them: an unreachable or failing Alertmanager
    is retried with backoff (doubling up to 30 s) for as long as it takes, so the
    caller's stream waits and keeps what is not delivered yet."""

    def __init__(
        self,
        url: str,
        console_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._endpoint = f"{url.rstrip('/')}/api/v2/alerts"
        self._console_url = console_url
        self._client = client or httpx.AsyncClient(timeout=10)
        self._sleep = sleep

    async def post(self, alerts: Sequence[Alert]) -> None:
        payloads = [to_alertmanager(alert, self._console_url) for alert in alerts]
        for start in range(0, len(payloads), CHUNK):
            await self._post(payloads[start : start + CHUNK])

    async def close(self) -> None:
        await self._client.aclose()

    async def _post(self, payloads: list[dict[str, object]]) -> None:
        ALERTMANAGER_UNDELIVERED.inc(len(payloads))
        try:
            await self._deliver(payloads)
        finally:
            ALERTMANAGER_UNDELIVERED.dec(len(payloads))

    async def _deliver(self, payloads: list[dict[str, object]]) -> None:
        delay = FIRST_BACKOFF_SECONDS
        while True:
            problem = await self._try(payloads)
            if problem is None:
                return
            if problem == "refused":
                if len(payloads) > 1:
                    # One bad alert must not hold back the others: find it.
                    for payload in payloads:
                        await self._deliver([payload])
                else:
                    ALERTMANAGER_POSTS.labels("refused").inc()
                    log.error("Alertmanager refused alert %s; not sent", payloads[0])
                return
            ALERTMANAGER_POSTS.labels("error").inc()
            log.warning(
                "Alertmanager (%s) did not take %d alerts: %s; trying again in %.1f s",
                self._endpoint,
                len(payloads),
                problem,
                delay,
            )
            await self._sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    async def _try(self, payloads: list[dict[str, object]]) -> str | None:
        """None when taken; "refused" when Alertmanager says the alerts are invalid
        (posting them again would not help); otherwise what went wrong."""
        try:
            response = await self._client.post(
                self._endpoint,
                content=orjson.dumps(payloads),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.is_success:
            ALERTMANAGER_POSTS.labels("ok").inc()
            return None
        if response.status_code == 400:
            log.warning("Alertmanager answered 400: %s", response.text[:500])
            return "refused"
        return f"HTTP {response.status_code}: {response.text[:200]}"
