"""What actions see: the project, its config and roadmap, the legacy app, the journal."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.errors import UserError
from migrate.reporting import NullReporter, Reporter

if TYPE_CHECKING:
    import jinja2

    from migrate.config import Config
    from migrate.inventory import Inventory
    from migrate.roadmap import Roadmap
    from migrate.state.journal import Journal


@dataclass
class Context:
    project_dir: Path
    config: Config
    roadmap: Roadmap
    reporter: Reporter = field(default_factory=NullReporter)
    journal: Journal | None = None
    #: each task's `with:`, expanded and validated once (actions.registry.check_params)
    task_params: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def state_dir(self) -> Path:
        from migrate.config import STATE_DIR

        return self.project_dir / STATE_DIR

    @property
    def source_dir(self) -> Path:
        return (self.project_dir / self.config.source.path).resolve()

    @cached_property
    def inventory(self) -> Inventory:
        from migrate.inventory import scan

        return scan(self.source_dir)

    @property
    def variables(self) -> dict[str, Any]:
        """What `{{ ... }}` in templates and roadmap values can use. No secrets.

        `target.orchestrator_url` and `target.plugin_url.NAME` say where the running system
        answers (migrate.yaml, else `migrate dev up`, else in-cluster DNS: verify/urls.py).
        """
        from migrate.verify import urls

        target = self.config.target.model_dump(by_alias=True, exclude={"database_url"})
        target["orchestrator_url"] = urls.orchestrator_url(self)
        target["plugin_url"] = urls.PluginUrls(self)
        return {
            "project": self.config.project,
            "target": target,
            "source": {"path": self.config.source.path},
        }

    @cached_property
    def templates(self) -> jinja2.Environment:
        """Jinja2 templates: the project's own `templates/` first, then the packaged ones."""
        import jinja2

        from migrate.resources import resource_path
        from migrate.state.cache import jinja_bytecode_cache

        search = [self.project_dir / "templates", resource_path("templates")]
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in search if p.is_dir()]),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            finalize=_none_is_empty,
            bytecode_cache=jinja_bytecode_cache("templates"),  # compiled once (state/cache.py)
        )

    def render(self, template: str, **extra: Any) -> str:
        import jinja2

        try:
            return self.templates.get_template(template).render(
                **self.variables, inventory=self.inventory, **extra
            )
        except jinja2.TemplateNotFound as exc:
            missing = exc.name if isinstance(exc.name, str) else template
            found = self.roadmap.locate(missing) or self.roadmap.locate(template)
            file, line, key = found if found else (None, None, None)
            raise UserError(
                f"template {missing!r} not found",
                file=file,
                line=line,
                key=key,
                hint=f"templates are looked up in {self.project_dir / 'templates'} and in the "
                "templates shipped with migrate",
            ) from None
        except jinja2.TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f" (line {line})" if line else ""
            raise UserError(f"template {template!r}{where}: {exc}") from None
        except Exception as exc:  # an error raised by the template's own expressions
            raise UserError(
                f"template {template!r} failed while rendering: {type(exc).__name__}: {exc}",
                hint="fix the expression in the template",
            ) from None

    def expand(self, value: Any) -> Any:
        """Render `{{ ... }}` in the strings of a roadmap value (`with`, checks)."""
        if isinstance(value, str) and "{{" in value:
            variables = self.variables
            plain = _substituted(value, variables)
            if plain is not None:  # only `{{ name.key }}` of plain values: as Jinja renders it
                return plain
            import jinja2

            env = jinja2.Environment(
                undefined=jinja2.StrictUndefined, autoescape=False, finalize=_none_is_empty
            )
            try:
                return env.from_string(value).render(**variables)
            except jinja2.TemplateError as exc:
                where = self.roadmap.locate(value)  # the roadmap's file:line of the value
                file, line, key = where if where else (None, None, None)
                raise UserError(
                    f"cannot expand {value!r}: {exc}",
                    file=file,
                    line=line,
                    key=key,
                    hint="roadmap values may use {{ project }}, {{ target.namespace }}, "
                    "{{ target.schema }}, {{ target.registry }}, {{ target.orchestrator_url }}, "
                    "{{ target.plugin_url.NAME }}, {{ source.path }}",
                ) from None
        if isinstance(value, dict):
            return {key: self.expand(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.expand(item) for item in value]
        return value


#: `{{ name.key.key }}`: a variable and its keys, nothing else (no filter, call or index)
_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
#: names Jinja reads as constants or operators, never as variables
_JINJA_WORDS = frozenset(
    {"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if"}
    | {"else", "for", "recursive", "with", "without", "context", "import", "as", "ignore"}
)


def _substituted(value: str, variables: dict[str, Any]) -> str | None:
    """`value` rendered without Jinja when it holds only `{{ a.b }}` references to the keys
    of plain dicts whose values are str, int, float, bool or None (None as ""), as
    `expand`'s Jinja environment renders them; None when anything else is there (Jinja
    then renders it, or says what is wrong). Saves importing Jinja and compiling a
    template per value."""
    if "\r" in value or value.endswith("\n") or "{{{" in value:
        return None  # Jinja normalises line ends, drops one trailing newline, reads `{{{`
    parts: list[str] = []
    position = 0
    for match in _REFERENCE.finditer(value):
        parts.append(value[position : match.start()])
        position = match.end()
        names = match.group(1).split(".")
        if names[0] in _JINJA_WORDS or names[0] not in variables:
            return None
        found: Any = variables[names[0]]
        for name in names[1:]:
            # Jinja tries the attribute first (a dict's `items`), then the key
            if type(found) is not dict or name not in found or hasattr(found, name):
                return None
            found = found[name]
        if found is None:
            parts.append("")
        elif type(found) in (str, int, float, bool):
            parts.append(str(found))
        else:
            return None
    parts.append(value[position:])
    if any(marker in text for text in parts[::2] for marker in ("{{", "{%", "{#")):
        return None
    return "".join(parts)


def _none_is_empty(value: Any) -> Any:
    """`{{ target.registry }}` with no registry set renders as nothing, not "None"."""
    return "" if value is None else value
