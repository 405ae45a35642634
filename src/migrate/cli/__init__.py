"""The command line: Typer commands that parse, call one `migrate.api` function, print.

Only `typer` and the standard library are imported at start-up; `migrate.api`
and Rich are imported inside the commands so `migrate --help` stays fast.
"""

import gc as _gc

# A command's start-up imports typer, pydantic, psycopg and our modules: hundreds of
# thousands of objects that all live until exit, and almost no cyclic garbage. With
# Python's default thresholds (700, 10, 10) the collector walks them again and again
# while they are being made: 20-35 ms of a `data load`'s or a warm `plan`'s start-up
# (benchmarks/startup.py, benchmarks/data_load.py). Less often is enough for a command
# line that lives seconds to minutes; cyclic garbage is still collected.
if _gc.get_threshold() == (700, 10, 10):  # Python's defaults: whoever set others knows why
    _gc.set_threshold(10_000, 20, 20)
