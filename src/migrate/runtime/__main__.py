"""`python3 -m migrate_runtime` runs the role of MIGRATE_ROLE (service, worker,
orchestrator); `--check` is the image's HEALTHCHECK (standard library only, fast)."""

from __future__ import annotations

import sys

from .host import check, serve

if __name__ == "__main__":
    sys.exit(check() if "--check" in sys.argv[1:] else serve())
