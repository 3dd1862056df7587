"""Writes ``schemas/events.schema.json``: `python -m schemas.export` (or `make schema`)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import events_json_schema

SCHEMA_FILE = Path(__file__).with_name("events.schema.json")


def rendered() -> str:
    return json.dumps(events_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.write_text(rendered(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
