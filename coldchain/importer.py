"""`coldchain import FILE`: what a cold storage system exported, sent through the API.

Every line is validated here as the API would, so that one bad line costs only
itself: valid events are sent in chunks, and each refused line is reported
with its line number, field and reason (and written beside the file).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.progress import Progress

from schemas.events import InvalidEvents, validate_event

CHUNK_EVENTS = 5_000
CHUNK_BYTES = 8 * 1024 * 1024


class ImportFailed(Exception):
    """The import cannot go on (file unreadable, token refused, API unreachable)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    event_id: str | None
    field: str
    message: str


@dataclass
class Summary:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True)
class _Pending:
    line: int
    event_id: str
    body: bytes


@dataclass(frozen=True)
class _Unreadable:
    reason: str


def _records(path: Path) -> Iterator[tuple[int, object]]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, _from_csv(row)
        else:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, _from_jsonl(line)


def _from_csv(row: dict[str | None, str | None]) -> dict[str, object]:
    event: dict[str, object] = {}
    for name, cell in row.items():
        if name is None or cell is None or cell == "":
            continue  # an empty cell is an absent field
        event[name] = [c for c in cell.split(";") if c] if name == "parent_trace_codes" else cell
    return event


def _from_jsonl(line: str) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return _Unreadable(str(exc))


def _validated(path: Path, summary: Summary) -> list[_Pending]:
    now = datetime.now(UTC)
    pending: list[_Pending] = []
    for line, raw in _records(path):
        summary.read += 1
        if isinstance(raw, _Unreadable):
            summary.rejected.append(Rejection(line, None, "(line)", f"not JSON: {raw.reason}"))
            continue
        try:
            event = validate_event(raw, now, line)
        except InvalidEvents as exc:
            summary.rejected.extend(
                Rejection(line, e.event_id, e.field, e.message) for e in exc.errors
            )
            continue
        body = event.__pydantic_serializer__.to_json(event)
        pending.append(_Pending(line, event.event_id, body))
    return pending


def _chunks(pending: list[_Pending]) -> Iterator[list[_Pending]]:
    chunk: list[_Pending] = []
    size = 0
    for item in pending:
        if chunk and (len(chunk) >= CHUNK_EVENTS or size + len(item.body) > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item.body) + 1
    if chunk:
        yield chunk


def _send(client: httpx.Client, chunk: list[_Pending], summary: Summary) -> None:
    """Post one chunk; drop what the API refuses by index and post the rest again."""
    while chunk:
        body = b"[" + b",".join(p.body for p in chunk) + b"]"
        try:
            response = client.post("/v1/events", content=body)
        except httpx.HTTPError as exc:
            raise ImportFailed(f"cannot reach the API at {client.base_url}: {exc}") from None
        if response.status_code == 202:
            answer = response.json()
            summary.accepted += int(answer["accepted"])
            summary.duplicates += int(answer.get("duplicates", 0))
            return
        if response.status_code == 401:
            raise ImportFailed("the API refused the token (401); check --token / COLDCHAIN_TOKEN")
        problems = _refused(response)
        if problems is None:
            raise ImportFailed(f"the API answered {response.status_code}: {response.text[:500]}")
        for index, name, message in problems:
            item = chunk[index]
            summary.rejected.append(Rejection(item.line, item.event_id, name, message))
        refused = {index for index, _, _ in problems}
        chunk = [p for i, p in enumerate(chunk) if i not in refused]


def _refused(response: httpx.Response) -> list[tuple[int, str, str]] | None:
    """(index, field, message) of each event the API refused, or None if it named none."""
    try:
        answer = response.json()
    except ValueError:
        return None
    if response.status_code == 422:
        rows = [(e["index"], e["field"], e["message"]) for e in answer.get("errors", [])]
    elif response.status_code == 403:
        rows = [
            (e["index"], "site_id", "this token may not push for this site")
            for e in answer.get("events", [])
        ]
    elif response.status_code == 409:
        rows = [
            (c["index"], "event_id", "already stands with different content")
            for c in answer.get("conflicts", [])
        ]
    else:
        return None
    rows = [r for r in rows if isinstance(r[0], int)]
    return rows or None


def run_import(path: Path, url: str, token: str, console: Console) -> Summary:
    summary = Summary()
    pending = _validated(path, summary)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with (
        httpx.Client(base_url=url, headers=headers, timeout=120) as client,
        Progress(console=console, transient=True) as progress,
    ):
        task = progress.add_task(f"发送 sending {path.name}", total=len(pending))
        for chunk in _chunks(pending):
            _send(client, chunk, summary)
            progress.advance(task, len(chunk))
    _report(path, summary, console)
    return summary


def _report(path: Path, summary: Summary, console: Console) -> None:
    console.print(
        f"读取 read {summary.read} · 接收 accepted {summary.accepted} "
        f"(其中重复 of which duplicates {summary.duplicates}) · "
        f"拒绝 rejected lines {len({r.line for r in summary.rejected})}"
    )
    if not summary.rejected:
        return
    for rejection in summary.rejected[:20]:
        console.print(
            f"  line {rejection.line} ({rejection.event_id or '-'}): "
            f"{rejection.field}: {rejection.message}"
        )
    if len(summary.rejected) > 20:
        console.print(f"  … {len(summary.rejected) - 20} more")
    report = path.with_name(path.name + ".rejected.jsonl")
    report.write_bytes(b"".join(orjson.dumps(r.__dict__) + b"\n" for r in summary.rejected))
    console.print(f"  every refused line, with its reason: {report}")
