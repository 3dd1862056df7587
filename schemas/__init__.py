"""pydantic v2 models of what coldchain accepts and serves. Imports nothing of the project."""

from schemas.events import (
    EVENT_TYPES,
    Disinfection,
    Event,
    FieldError,
    Intake,
    InvalidEvents,
    NucleicTest,
    Outbound,
    Release,
    Sale,
    canonical_json,
    content_hash,
    load_stored,
    validate_event,
    validate_events,
)

__all__ = [
    "EVENT_TYPES",
    "Disinfection",
    "Event",
    "FieldError",
    "Intake",
    "InvalidEvents",
    "NucleicTest",
    "Outbound",
    "Release",
    "Sale",
    "canonical_json",
    "content_hash",
    "load_stored",
    "validate_event",
    "validate_events",
]
