"""Planner plugin: split a goal into ordered steps."""

from __future__ import annotations

import re
from typing import Any

_SPLIT = re.compile(r"\s*(?:;|\.|\bthen\b|\band then\b|\n)\s*", re.IGNORECASE)


def split_goal(goal: str) -> list[str]:
    """Split a free-text goal into non-empty step texts."""
    return [part.strip() for part in _SPLIT.split(goal) if part and part.strip()]


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    """Turn ``{"goal": str, "max_steps": int?}`` into a numbered plan."""
    goal = str(payload.get("goal", ""))
    max_steps = int(payload.get("max_steps", 10))
    steps = split_goal(goal)[:max_steps]
    return {
        "event": "plan.ready",
        "goal": goal,
        "steps": [{"n": i, "action": text} for i, text in enumerate(steps, start=1)],
        "step_count": len(steps),
    }
