"""The event bus (DESIGN 3.9): `connect()` picks the implementation from MIGRATE_BUS."""

from __future__ import annotations

from .base import SETTLED, Bus, BusUnavailable, DeadLetter, Delivery

__all__ = ["SETTLED", "Bus", "BusUnavailable", "DeadLetter", "Delivery", "connect"]


def connect(kind: str | None = None) -> Bus:
    """The bus named by `kind` or MIGRATE_BUS, configured from REDIS_URL or
    KAFKA_BOOTSTRAP_SERVERS. Imports its client library only here."""
    from .. import settings

    kind = kind or settings.get("MIGRATE_BUS")
    if kind == "redis":
        from .redis import RedisBus

        return RedisBus(settings.get("REDIS_URL"))
    if kind == "kafka":
        from .kafka import KafkaBus

        return KafkaBus(settings.get("KAFKA_BOOTSTRAP_SERVERS"), settings.get("REDIS_URL"))
    raise ValueError(f"MIGRATE_BUS={kind!r}: set it to redis or kafka")
