"""A rule set: which rules run and with what thresholds (versioned, one per deployment)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alerts import ALERT_TYPES, AlertType


class RuleSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Recorded on every alert, so that a finding can be traced to the rules that made it.
    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    enabled: frozenset[AlertType] = frozenset(ALERT_TYPES)  # type: ignore[arg-type]
    #: quantity_exceeded fires when released > received x (1 + this).
    quantity_tolerance: Decimal = Field(default=Decimal("0.005"), ge=0, le=1)
    #: info_mismatch fires when received from A > sent by A x (1 + this).
    info_tolerance: Decimal = Field(default=Decimal("0.005"), ge=0, le=1)
    #: How late an event may arrive and still be read in occurred_at order.
    lateness: timedelta = Field(default=timedelta(minutes=10), ge=timedelta(0))
    #: Declared origins that the disinfection and test rules apply to.
    imported_origins: frozenset[Literal["imported", "domestic"]] = frozenset({"imported"})

    #: How often a site is expected to push something; silent longer, Prometheus alerts.
    report_interval: timedelta = Field(default=timedelta(days=1), gt=timedelta(0))
    #: Per-site exceptions to ``report_interval`` (a market that closes on Sundays...).
    report_intervals: dict[str, Annotated[timedelta, Field(gt=timedelta(0))]] = Field(
        default_factory=dict
    )

    def runs(self, alert_type: AlertType) -> bool:
        return alert_type in self.enabled

    def report_interval_of(self, site_id: str) -> timedelta:
        return self.report_intervals.get(site_id, self.report_interval)
