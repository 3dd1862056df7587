"""Alerts the pipeline raises (contract section 2)."""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict

AlertType = Literal[
    "missing_disinfection",
    "missing_nucleic_test",
    "positive_nucleic_test",
    "mixed_storage",
    "unknown_trace_code",
    "quantity_exceeded",
    "info_mismatch",
]
Severity = Literal["critical", "warning"]

ALERT_TYPES: Final[tuple[str, ...]] = get_args(AlertType)

SEVERITY: Final[dict[str, Severity]] = {
    "missing_disinfection": "critical",
    "missing_nucleic_test": "critical",
    "positive_nucleic_test": "critical",
    "mixed_storage": "warning",
    "unknown_trace_code": "warning",
    "quantity_exceeded": "warning",
    "info_mismatch": "warning",
}

#: How people read each type: Chinese first, English beside (the console says the same).
ALERT_TITLES: Final[dict[str, tuple[str, str]]] = {
    "missing_disinfection": ("缺少消杀", "missing disinfection"),
    "missing_nucleic_test": ("缺少核酸检测", "missing nucleic test"),
    "positive_nucleic_test": ("核酸检测阳性", "positive nucleic test"),
    "mixed_storage": ("进口与国产混存", "mixed storage"),
    "unknown_trace_code": ("未知追溯码", "unknown trace code"),
    "quantity_exceeded": ("数量超出", "quantity exceeded"),
    "info_mismatch": ("信息不一致", "info mismatch"),
}


class Finding(BaseModel):
    """A condition a rule found, before it has an id, a status and a detection time."""

    model_config = ConfigDict(frozen=True)

    type: AlertType
    trace_code: str
    site_id: str
    zone_id: str | None = None
    occurred_at: AwareDatetime
    event_ids: tuple[str, ...]
    details: dict[str, Any]
    #: What makes the condition the same one when found again (besides type and trace code).
    identity: tuple[str, ...]


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_id: str
    type: AlertType
    severity: Severity
    trace_code: str
    site_id: str
    zone_id: str | None = None
    occurred_at: AwareDatetime
    detected_at: AwareDatetime
    status: Literal["firing", "resolved"]
    resolved_at: AwareDatetime | None = None
    event_ids: list[str]
    details: dict[str, Any]
    #: The version of the rule set that found it.
    rule_set: str
