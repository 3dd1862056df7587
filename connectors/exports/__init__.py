"""A batch's lineage in the formats other systems read: FDA FSMA 204 and GS1 EPCIS 2.0.

Pure functions: they take events and give a CSV text or a JSON-LD dict, no I/O. Their
input is ``histories``, the events of the batch itself (under its own trace code) and
of its related codes: its parents (the codes its intakes name in
``parent_trace_codes``), its children (codes whose intakes name it) and its siblings
(the other children of its parents). Of the related codes' events only two kinds are
read: intakes that name parents (the transformations) and the parents' ``sale``
events at a transformation's site (what went into it). :func:`related_codes` says
which codes to load for a batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pipeline.rules.lineage import declaration_of
from pipeline.rules.order import event_order_key
from schemas.events import Event, Intake, Sale

Histories = Mapping[str, Sequence[Event]]


@dataclass(frozen=True)
class Input:
    """One parent lot that went into a transformation."""

    trace_code: str
    #: The parent's kilograms that left by ``sale`` at the transformation's site after
    #: the previous transformation of that parent there and up to this one; None when
    #: the parent's events record none.
    quantity_kg: Decimal | None
    #: The parent's declared product, when its events are known.
    product: str | None


@dataclass(frozen=True)
class Transformation:
    """Child codes made at one site, at one instant, from the same parents.

    Each output is the intake that brought a child code into being.
    """

    site_id: str
    occurred_at: datetime
    inputs: tuple[Input, ...]
    outputs: tuple[Intake, ...]

    @property
    def key(self) -> str:
        """Stable across exports: site, instant and parent codes."""
        parents = ";".join(i.trace_code for i in self.inputs)
        return f"{self.site_id}|{self.occurred_at.isoformat()}|{parents}"


def parents_of(events: Iterable[Event]) -> list[str]:
    """The codes the batch's intakes name as parents, each once, in order."""
    parents: dict[str, None] = {}
    for event in events:
        if isinstance(event, Intake):
            parents.update(dict.fromkeys(event.parent_trace_codes))
    return list(parents)


def related_codes(trace_code: str, events: Sequence[Event], children: Sequence[str]) -> list[str]:
    """Parents of the batch and its children; the caller adds the parents' children."""
    return [c for c in dict.fromkeys([*parents_of(events), *children]) if c != trace_code]


def _unique(histories: Histories) -> list[Event]:
    seen: dict[str, Event] = {}
    for events in histories.values():
        for event in events:
            seen.setdefault(event.event_id, event)
    return sorted(seen.values(), key=event_order_key)


def transformations(trace_code: str, histories: Histories) -> list[Transformation]:
    """Every transformation the batch went into or came out of, in time order."""
    events = _unique(histories)
    groups: dict[tuple[str, datetime, tuple[str, ...]], list[Intake]] = {}
    for event in events:
        if isinstance(event, Intake) and event.parent_trace_codes:
            parents = tuple(sorted(set(event.parent_trace_codes)))
            groups.setdefault((event.site_id, event.occurred_at, parents), []).append(event)
    # When each parent was transformed at each site, to bound what each one consumed.
    instants: dict[tuple[str, str], list[datetime]] = {}
    for site, moment, parents in groups:
        for parent in parents:
            instants.setdefault((parent, site), []).append(moment)
    found = []
    for (site, moment, parents), outputs in groups.items():
        codes = {o.trace_code for o in outputs}
        if trace_code not in parents and trace_code not in codes:
            continue
        inputs = []
        for parent in parents:
            earlier = [t for t in instants[(parent, site)] if t < moment]
            since = max(earlier) if earlier else None
            used = [
                e.quantity_kg
                for e in histories.get(parent, ())
                if isinstance(e, Sale)
                and e.site_id == site
                and e.occurred_at <= moment
                and (since is None or e.occurred_at > since)
            ]
            declared = declaration_of(histories.get(parent, ()))
            inputs.append(
                Input(
                    trace_code=parent,
                    quantity_kg=sum(used, Decimal(0)) if used else None,
                    product=declared.product if declared else None,
                )
            )
        found.append(
            Transformation(
                site_id=site,
                occurred_at=moment,
                inputs=tuple(inputs),
                outputs=tuple(sorted(outputs, key=lambda o: (o.trace_code, o.event_id))),
            )
        )
    return sorted(found, key=lambda t: (t.occurred_at, t.key))


def kilograms(value: Decimal) -> str:
    """An exact kilogram amount as plain decimal text: 1000, 1200.5, 0.001."""
    return format(value.normalize(), "f")


from connectors.exports._epcis import (  # noqa: E402
    BIZSTEP_DISINFECTING,
    EPCIS_CONTEXT,
    ID_BASE,
    VOCAB,
    VOCAB_PREFIX,
    epcis_document,
)
from connectors.exports._fsma204 import (  # noqa: E402
    COMBINED_COLUMNS,
    FSMA204_EVENTS,
    fda_headers,
    fsma204_csv,
    fsma204_rows,
)

__all__ = [
    "BIZSTEP_DISINFECTING",
    "COMBINED_COLUMNS",
    "EPCIS_CONTEXT",
    "FSMA204_EVENTS",
    "ID_BASE",
    "VOCAB",
    "VOCAB_PREFIX",
    "Histories",
    "Input",
    "Transformation",
    "epcis_document",
    "fda_headers",
    "fsma204_csv",
    "fsma204_rows",
    "kilograms",
    "parents_of",
    "related_codes",
    "transformations",
]
