"""`coldchain up --demo`: a tokens file if there is none, and the demo history loaded."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from coldchain.config import Settings
from coldchain.demo import Highlight, build_demo
from coldchain.runtime import Runtime
from connectors.auth import new_token, tokens_file_entry
from connectors.ingest import ConflictingEvents
from schemas.events import validate_events

log = logging.getLogger(__name__)

CHUNK = 5_000


def ensure_demo_tokens(settings: Settings) -> tuple[Path, str | None]:
    """The tokens file to use and, when the demo made it, its regulator token.

    The token itself is kept in ``<data dir>/demo-token`` (mode 0600), never in the
    tokens file, so that a second `up --demo` can print it again.
    """
    path = settings.tokens_file or settings.data_dir / "tokens.yaml"
    kept = settings.data_dir / "demo-token"
    if path.exists():
        return path, kept.read_text().strip() if kept.exists() else None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = new_token()
    path.write_text("tokens:\n" + tokens_file_entry(token, "regulator", []), encoding="utf-8")
    fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return path, token


def _anchor(runtime: Runtime) -> datetime:
    """The demo's "now", fixed at first load so that reloading sends identical events."""
    path = runtime.settings.data_dir / "demo-anchor"
    if path.exists():
        return datetime.fromisoformat(path.read_text().strip())
    anchor = runtime.clock().replace(microsecond=0)
    path.write_text(anchor.isoformat())
    return anchor


async def load_demo(runtime: Runtime) -> list[Highlight]:
    demo = build_demo(_anchor(runtime))
    events, errors = validate_events(demo.events, runtime.clock())
    if errors:
        raise RuntimeError(f"the demo generator made invalid events: {errors[:3]}")
    accepted = duplicates = 0
    for start in range(0, len(events), CHUNK):
        try:
            result = await runtime.ingestor.accept(events[start : start + CHUNK])
        except ConflictingEvents as exc:
            log.warning("demo: %s (the data dir holds another demo's events)", exc)
            continue
        accepted += result.accepted - result.duplicates
        duplicates += result.duplicates
    log.info("demo: %d new events, %d already there", accepted, duplicates)
    return list(demo.highlights)
