"""The command line: Typer commands that parse, call one `migrate.api` function, print.

Only `typer` and the standard library are imported at start-up; `migrate.api`
and Rich are imported inside the commands so `migrate --help` stays fast.
"""
