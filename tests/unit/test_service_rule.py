"""In CI a missing service fails the suite; elsewhere it skips."""

from __future__ import annotations

import pytest

from tests.conftest import require_service


def test_missing_service_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is required"):
        require_service("PostgreSQL", "no server")


def test_missing_service_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIGRATE_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Docker unavailable"):
        require_service("Docker", "no engine")
