"""Settings: one object built from the command line and the environment.

External services named in the environment replace the embedded ones
(contract section 5); everything else has a default that runs on one machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_PARTITIONS = 8


@dataclass(frozen=True)
class Topics:
    events: str = "coldchain.events"
    dead_letter: str = "coldchain.events.deadletter"
    sites: str = "coldchain.sites"
    alerts: str = "coldchain.alerts"
    partitions: int = DEFAULT_PARTITIONS

    def all(self) -> dict[str, int]:
        return {
            self.events: self.partitions,
            self.dead_letter: 1,
            self.sites: self.partitions,
            self.alerts: self.partitions,
        }


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("coldchain-data")
    tokens_file: Path | None = None
    kafka_bootstrap: str | None = None
    clickhouse_url: str | None = None
    alertmanager_url: str | None = None
    #: How often firing alerts are posted to Alertmanager again (< its resolve_timeout).
    alertmanager_repost_seconds: float = 60.0
    #: Where people reach the console: the base of links in Alertmanager notifications.
    public_url: str | None = None
    topics: Topics = field(default_factory=Topics)
    rules_file: Path | None = None
    group_id: str = "coldchain-worker"

    @property
    def embedded_broker(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def console_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Environment first, then explicit (command-line) overrides that are not None."""
        env = os.environ if env is None else env
        topics = Topics(
            events=env.get("COLDCHAIN_EVENTS_TOPIC", Topics.events),
            dead_letter=env.get("COLDCHAIN_DEAD_LETTER_TOPIC", Topics.dead_letter),
            sites=env.get("COLDCHAIN_SITES_TOPIC", Topics.sites),
            alerts=env.get("COLDCHAIN_ALERTS_TOPIC", Topics.alerts),
            partitions=int(env.get("COLDCHAIN_PARTITIONS", DEFAULT_PARTITIONS)),
        )
        tokens = env.get("COLDCHAIN_TOKENS_FILE")
        rules = env.get("COLDCHAIN_RULES")
        settings = cls(
            data_dir=Path(env.get("COLDCHAIN_DATA_DIR", "coldchain-data")),
            tokens_file=Path(tokens) if tokens else None,
            rules_file=Path(rules) if rules else None,
            kafka_bootstrap=env.get("COLDCHAIN_KAFKA_BOOTSTRAP") or None,
            clickhouse_url=env.get("COLDCHAIN_CLICKHOUSE_URL") or None,
            alertmanager_url=env.get("COLDCHAIN_ALERTMANAGER_URL") or None,
            public_url=env.get("COLDCHAIN_PUBLIC_URL") or None,
            alertmanager_repost_seconds=float(
                env.get("COLDCHAIN_ALERTMANAGER_REPOST_SECONDS") or 60.0
            ),
            topics=topics,
            group_id=env.get("COLDCHAIN_GROUP_ID", "coldchain-worker"),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given)  # type: ignore[arg-type]
