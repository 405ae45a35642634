"""One JSON object a line on stdout: what a log collector expects from a container.

Every role logs through `log()`; fields are added as keys of the object (values
that are not JSON are written with `str`). Never pass a secret as a field.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from typing import Any

from . import settings

_lock = threading.Lock()


def log(level: str, message: str, **fields: Any) -> None:
    record = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "plugin": settings.get("MIGRATE_PLUGIN"),
        "message": message,
        **fields,
    }
    line = json.dumps(record, default=str, ensure_ascii=False)
    with _lock:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):  # stdout closed: logging must never break the caller
            pass
