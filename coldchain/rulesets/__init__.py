"""Rule-set files: which rules run, with what thresholds (`--rules PATH`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from schemas.rules import RuleSet

DEFAULT = "contract-v1.yaml"


class RuleSetError(ValueError):
    """The rule-set file is missing or malformed; the message names the file and field."""


def load_rule_set(path: Path | None) -> RuleSet:
    """The rule set in ``path``, or the contract's own when None."""
    try:
        if path is None:
            text = (resources.files(__package__) / DEFAULT).read_text(encoding="utf-8")
            where = f"built-in {DEFAULT}"
        else:
            text = path.read_text(encoding="utf-8")
            where = str(path)
    except OSError as exc:
        raise RuleSetError(f"cannot read rule set {path}: {exc.strerror}") from None
    try:
        return RuleSet.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise RuleSetError(f"rule set {where} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise RuleSetError(f"rule set {where}: {problems}") from None
