"""The `migrate` command: the root Typer app, the global `-C` option, error handling."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

DEBUG_LOG = Path(".migrate") / "debug.log"


class PlainGroup(TyperGroup):
    """A group whose commands' options are coerced without Pydantic (`_plain_params`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _plain_params(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:  # its options and help flag, before they are parsed
            _plain_params(command.get_params(ctx))
        return name, command, rest


class MigrateGroup(PlainGroup):
    """Turns `MigrateError`s into a message and exit code 1, everywhere below it.

    Its commands are `LazyCommands`: each is built, and its module imported, when it is
    run or shows its help; the list in `migrate --help` needs none of them."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the order they are declared in, not alphabetical

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """As Typer lists them, from each command's short help, building none."""
        commands = self.commands
        if not isinstance(commands, LazyCommands):
            return super().format_commands(ctx, formatter)
        rows = []
        listed = [(name, commands.listed(name)) for name in self.list_commands(ctx)]
        listed = [(name, c) for name, c in listed if c is not None and not c.hidden]
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _ in listed)
            rows = [(name, command.get_short_help_str(limit)) for name, command in listed]
            with formatter.section("Commands"):
                formatter.write_dl(rows)
        return None

    def invoke(self, ctx: Any) -> Any:
        from migrate.errors import MigrateError

        try:
            return super().invoke(ctx)
        except MigrateError as exc:
            _report_error(exc)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("click", "typer")):
                raise
            _report_crash(ctx, exc)
            raise typer.Exit(1) from None


def _plain_params(params: list[Any]) -> None:
    """Coerce the options of the command about to run without Pydantic, where the
    value is one Typer's own coercion would accept as is.

    Typer 0.29 coerces every parameter through a Pydantic TypeAdapter, built on first
    use: importing `typer._adapters` and building an adapter per option cost tens of
    milliseconds of every `migrate plan` and every `--help` (issue 14). `PlainParam`
    turns the values Typer would accept (a str, a Path, a choice of an Enum, a decimal
    int or float within its bounds, a list of those) into exactly what Typer's adapter
    gives; any other value (an error, a parser, a file) goes to Typer's own coercion,
    so messages and exit codes are Typer's. Typer is pinned below 0.30 (its private
    `_runtime_param` and `typer._coercion`).
    """
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is not None and getattr(param, "_runtime_param", "") is None:
            param._runtime_param = _plain_param(descriptor)


def _plain_param(descriptor: Any) -> Any:
    from typer._coercion import RuntimeParam

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            coerced = _plain_value(descriptor, self.annotation, value, param, ctx)
            if coerced is not _TYPER:
                return coerced
            from typer._coercion import build_runtime_param

            typer_param = build_runtime_param(descriptor)
            return typer_param._coerce_value(value, param=param, ctx=ctx)

    return PlainParam(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)


#: `_plain_value`'s answer when Typer's own coercion decides
_TYPER: Any = object()
#: the decimal numbers `_plain_value` reads itself (anything else: Typer's coercion)
_INT = re.compile(r"0|[1-9][0-9]{0,17}")
_FLOAT = re.compile(r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")


def _plain_value(descriptor: Any, annotation: Any, value: Any, param: Any, ctx: Any) -> Any:
    """`value` as Typer's TypeAdapter for `annotation` makes it, or `_TYPER`."""
    from enum import Enum
    from typing import get_args, get_origin

    info = descriptor.parameter_info
    if info.parser is not None or descriptor.file_annotation is not None:
        return _TYPER
    if get_origin(annotation) is list:
        if not isinstance(value, list | tuple):
            return _TYPER
        [item_annotation] = get_args(annotation)
        items = [_plain_value(descriptor, item_annotation, item, param, ctx) for item in value]
        return _TYPER if any(item is _TYPER for item in items) else items
    if annotation is str or annotation is bool:
        return value if type(value) is annotation else _TYPER
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        from typer._param_types import coerce_cli_choice

        try:
            return coerce_cli_choice(
                value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError:
            return _TYPER
    if annotation is int or annotation is float:
        pattern = _INT if annotation is int else _FLOAT
        if type(value) is str and pattern.fullmatch(value):
            number = annotation(value)
        elif type(value) is annotation:
            number = value
        else:
            return _TYPER
        if info.clamp or (info.min is not None and number < info.min):
            return _TYPER
        return _TYPER if info.max is not None and number > info.max else number
    if annotation is Path and info.path_type is None and isinstance(value, str | Path) and value:
        from typer._click.exceptions import BadParameter
        from typer._param_types import coerce_cli_path

        path = value if isinstance(value, Path) else Path(value)
        try:
            return coerce_cli_path(path, info, path_type=Path, param=param, ctx=ctx)
        except BadParameter:
            return _TYPER
    return _TYPER


def _report_error(exc: Exception) -> None:
    from rich.markup import escape

    from migrate.cli import output
    from migrate.errors import ActionError, UserError
    from migrate.secrets import mask_text

    _remember_environment()
    text = mask_text(str(exc))
    if output.state["json"]:
        document: dict[str, Any] = {"version": 1}
        fields = exc.to_dict() if isinstance(exc, UserError | ActionError) else {"error": str(exc)}
        document.update(
            {
                key: mask_text(value) if isinstance(value, str) else value
                for key, value in fields.items()
            }
        )
        output.print_json(document)
    output.err().print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)


def _remember_environment() -> None:
    """The database URL may be in the environment only: mask its password too, even
    where a library quotes it out of its URL."""
    import os

    from migrate.secrets import remember

    remember(os.environ.get("MIGRATE_DATABASE_URL", ""))


def _report_crash(ctx: Any, exc: Exception) -> None:
    """An unexpected exception: a short traceback with no local variables, and a log."""
    import traceback

    from rich.markup import escape

    from migrate.cli import output
    from migrate.secrets import mask_text

    _remember_environment()
    lines = traceback.format_exception(exc)  # standard tracebacks never print locals
    text = mask_text("".join(lines))
    root = ctx.find_root().obj or {}
    log = Path(root.get("project", ".")) / DEBUG_LOG
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text, encoding="utf-8")
        where = f"the full traceback is in {log}; please report it with that file"
    except OSError:
        where = "please report it with the traceback above"
    summary = mask_text(f"{type(exc).__name__}: {exc}")
    if output.state["json"]:
        output.print_json({"version": 1, "error": f"internal error: {summary}"})
    short = "".join(traceback.format_exception(exc, limit=-3))
    output.err().print(escape(mask_text(short)), end="")
    output.err().print(
        f"[bold red]internal error:[/] {escape(summary)}\nThis is a bug in migrate; {where}."
    )


app = typer.Typer(
    cls=MigrateGroup,
    name="migrate",
    help="Move a plugin-based, file-backed Python application onto Kubernetes, phase by phase.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: it starts twice as fast as Rich panels
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from migrate import installed_version

        typer.echo(f"migrate {installed_version()}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    project: Annotated[
        Path,
        typer.Option(
            "-C",
            "--project",
            help="Run as if migrate was started in DIR (like git -C): the project directory, "
            "where migrate.yaml is.",
            metavar="DIR",
        ),
    ] = Path("."),
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL URL for this run, before MIGRATE_DATABASE_URL and "
            "target.database_url (default: an embedded server under .migrate/postgres).",
            metavar="URL",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Move a plugin-based, file-backed Python application onto Kubernetes, phase by phase.

    Typical flow: `migrate init --source APP`, `migrate plan`, `migrate apply --phase 1`,
    `migrate verify --phase 1`, then the next phase. `migrate rollback` undoes a phase.
    """
    from migrate.cli import output

    output.state["json"] = False
    ctx.obj = {"project": project}
    if database_url:
        import os

        from migrate.data.database import ENV_URL, set_global_override
        from migrate.secrets import mask_text, remember

        remember(database_url)  # masked in every message and traceback from here on
        if mask_text(database_url) != database_url:
            output.err().print(
                "[yellow]warning:[/] --database-url holds a password, which every local user "
                "can read in `ps`; set MIGRATE_DATABASE_URL instead, or keep the password in a "
                "password file (PGPASSFILE, default ~/.pgpass) and leave it out of the URL",
                soft_wrap=True,
            )
        # the URL's place in the precedence (DESIGN 3.2) is above the variable's; messages
        # name it as --database-url, child processes get it through the variable
        os.environ[ENV_URL] = database_url
        set_global_override(database_url)


# The commands in the order `migrate --help` lists them (commands, then groups, as Typer
# does): name -> (module of migrate.cli, its function or, for a group, its Typer app, one
# line of help that fits an 80-column terminal; the docstring is the full help). A module
# is imported only when its command runs or shows its help: `migrate --help` imports none.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("init", "init", "Scaffold migrate.yaml and the roadmap for an app."),
    "plan": ("plan", "plan", "Show what apply would change (changes nothing)."),
    "apply": ("apply", "apply", "Apply a phase: show the plan, ask, change, journal."),
    "rollback": ("apply", "rollback", "Undo a phase's journaled changes, newest first."),
    "verify": ("verify", "verify", "Run the tasks' checks through testinfra."),
    "status": ("status", "status", "Show each task: done, last applied, last verified."),
    "render": ("render", "render", "Write each phase's Kubernetes manifests."),
    "ci": ("ci", "ci", "The pipeline step: plan, verify, reports; exit 0/2/1."),
    "report": ("report", "report", "Write the blueprint, verified tasks ticked."),
    "compare": ("compare", "compare", "Replay recorded inputs: legacy code vs the images."),
    "bench": ("bench", "bench", "Latency of the legacy code and of the containers."),
    "data": ("data", "app", "Load the file data into PostgreSQL."),
    "images": ("images", "app", "Build and manage the plugins' images."),
    "infra": ("infra", "app", "Provision a phase through Pulumi."),
    "dev": ("dev", "app", "Run the migrated system on local Docker."),
}


class LazyCommands(MutableMapping[str, Any]):
    """The root's commands by name (`COMMANDS`), each built on first use."""

    def __init__(self, built: Mapping[str, Any]) -> None:
        self._built: dict[str, Any] = dict(built)

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = _build(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._built]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))

    def listed(self, name: str) -> Any:
        """The command as `--help` lists it: built, or a stand-in with its short help."""
        from typer.core import TyperCommand

        if name in self._built or name not in COMMANDS:
            return self._built.get(name)
        return TyperCommand(name=name, short_help=COMMANDS[name][2])


def _build(name: str) -> Any:
    """The command `name` as Typer builds it under the root app (the same settings)."""
    import importlib

    from typer.main import get_command

    module, attribute, short_help = COMMANDS[name]
    target = getattr(importlib.import_module(f"migrate.cli.{module}"), attribute)
    holder = typer.Typer(
        rich_markup_mode=app.rich_markup_mode,
        pretty_exceptions_enable=False,
        pretty_exceptions_short=app.pretty_exceptions_short,
        suggest_commands=app.suggest_commands,
        add_completion=False,
    )
    holder.callback()(_no_options)  # a group, whatever it holds
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name, short_help=short_help, cls=PlainGroup)
    else:
        holder.command(name, short_help=short_help)(target)
    group = get_command(holder)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


def _no_options() -> None:
    pass


def main() -> None:
    try:
        app()
    finally:
        # The interpreter's teardown walks every object for cyclic garbage, several times,
        # as it clears the modules: 45-50 ms after the work is done (typer, pydantic,
        # psycopg, rich). Moved out of the collector's reach, they are freed as modules
        # go (by reference counts) or with the process; what atexit handlers make after
        # this is still collected.
        gc.freeze()
