"""`python3 -m migrate_runtime` serves the plugin; `--check` is the image's HEALTHCHECK."""

from __future__ import annotations

import sys

from .host import check, serve

if __name__ == "__main__":
    sys.exit(check() if "--check" in sys.argv[1:] else serve())
