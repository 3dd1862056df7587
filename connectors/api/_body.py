"""Reading a POST /v1/events body: one event, a JSON array, or NDJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from schemas.events import FieldError

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_EVENTS = 10_000


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__(errors[0].message if errors else "bad body")


async def read_capped(chunks: AsyncIterator[bytes], declared_length: str | None) -> bytes:
    """The body, refusing at once what is over 16 MiB (declared or actual)."""
    if (
        declared_length is not None
        and declared_length.isdigit()
        and int(declared_length) > MAX_BODY_BYTES
    ):
        raise BodyTooLarge
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge
    return bytes(body)


def parse_items(
    body: bytes, content_type: str
) -> tuple[list[tuple[int, object]], list[FieldError]]:
    """Decoded events by index (not yet validated), and the lines that did not decode.

    Raises BadBody when the body as a whole is unusable, BodyTooLarge past 10,000 events.
    """
    if content_type.split(";")[0].strip().lower() == "application/x-ndjson":
        items, errors = _ndjson(body)
    else:
        items = list(enumerate(_json(body)))
        errors = []
    if len(items) + len(errors) > MAX_EVENTS:
        raise BodyTooLarge
    if not items and not errors:
        raise BadBody([_body_error(None, "holds no event; send an event, an array or NDJSON")])
    return items, errors


def _json(body: bytes) -> list[object]:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadBody([_body_error(None, f"is not valid JSON: {exc}")]) from None
    if isinstance(decoded, dict):
        return [decoded]
    if isinstance(decoded, list):
        return decoded
    raise BadBody([_body_error(None, "must be an event object or an array of events")])


def _ndjson(body: bytes) -> tuple[list[tuple[int, object]], list[FieldError]]:
    items: list[tuple[int, object]] = []
    errors: list[FieldError] = []
    lines = [line for line in body.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        try:
            items.append((index, orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            errors.append(_body_error(index, f"line {index + 1} is not valid JSON: {exc}"))
    return items, errors


def _body_error(index: int | None, message: str) -> FieldError:
    return FieldError(index=index, event_id=None, field="(body)", message=message)
