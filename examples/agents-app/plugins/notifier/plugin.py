"""Notifier plugin: format a notification message (no delivery, no I/O)."""

from __future__ import annotations

import hashlib
from typing import Any

CHANNELS = ("email", "slack", "webhook")
LIMITS = {"email": 2000, "slack": 400, "webhook": 1000}


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    """Format ``{"channel": str, "to": str, "summary"|"title": str}``."""
    channel = str(payload.get("channel", "slack"))
    if channel not in CHANNELS:
        return {"event": "notification.failed", "error": f"unknown channel {channel!r}"}
    body = str(payload.get("summary") or payload.get("title") or "(empty)")
    limit = LIMITS[channel]
    truncated = len(body) > limit
    if truncated:
        body = body[: limit - 1] + "…"
    message_id = hashlib.sha256(f"{channel}|{payload.get('to', '')}|{body}".encode()).hexdigest()
    return {
        "event": "notification.sent",
        "channel": channel,
        "to": str(payload.get("to", "ops")),
        "body": body,
        "truncated": truncated,
        "message_id": message_id[:16],
    }
