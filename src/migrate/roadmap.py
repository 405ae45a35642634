"""The migration roadmap (DESIGN 3.3): phases, tasks, needs and checks.

Loading validates the YAML against the models below and then the rules that
span the whole file (phase numbering, unique task ids, known `needs`, no
cycles); every error names the file, the line and the key path. A task's
`with:` block is checked where the project is assembled, after its `{{ }}`
are expanded (`migrate.actions.registry.check_params`): this module imports
nothing from `actions/` or `engine/`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from migrate.checks import Check
from migrate.errors import RoadmapError
from migrate.yamlfile import Loc, Located, format_loc

#: The action kinds, the one list: `migrate.actions.registry` maps each to its module
#: (`migrate.actions.<kind>`), and the roadmap accepts no other `action:`.
ActionKind = Literal["manifests", "infra", "images", "data", "files", "manual"]
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)
#: The kinds whose tasks render Kubernetes objects and provision them through Pulumi.
RENDERED_KINDS: tuple[ActionKind, ...] = ("manifests", "infra")

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Task(_Model):
    id: Annotated[str, Field(description="Unique slug: lower-case letters, digits and '-'.")]
    title: str
    action: ActionKind
    with_: Annotated[dict[str, Any], Field(alias="with")] = {}
    needs: list[str] = []
    checks: list[Check] = []

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(
                f"{value!r} is not a task id: use lower-case letters, digits and single '-', "
                "e.g. containerize-services"
            )
        return value


class Phase(_Model):
    id: Annotated[int, Field(ge=1)]
    name: str
    duration: str = ""
    description: str = ""
    tasks: list[Task] = []


class Roadmap(_Model):
    phases: list[Phase]
    _located: Located | None = PrivateAttr(default=None)  # where each value is in the file

    def __eq__(self, other: object) -> bool:  # the same phases, wherever they were read from
        return isinstance(other, Roadmap) and self.phases == other.phases

    __hash__ = None  # type: ignore[assignment]  # as before: list fields are not hashable

    @property
    def located(self) -> Located | None:
        """The file this roadmap was read from and the line of each value (None when it
        was built in code)."""
        return self._located

    def locate(self, value: str) -> tuple[Path, int | None, str] | None:
        """The file, line and key path of the first roadmap value equal to `value`: for
        errors found after loading (a `{{ variable }}`, a template name)."""
        located = self._located
        if located is None:
            return None

        def find(node: Any, loc: Loc) -> Loc | None:
            if isinstance(node, str):
                return loc if node == value else None
            items: Any = ()
            if isinstance(node, dict):
                items = node.items()
            elif isinstance(node, list):
                items = enumerate(node)
            for key, item in items:
                found = find(item, (*loc, key))
                if found is not None:
                    return found
            return None

        loc = find(located.data, ())
        if loc is None:
            return None
        return located.file, located.line_of(loc), format_loc(loc)

    def phase(self, number: int) -> Phase:
        for phase in self.phases:
            if phase.id == number:
                return phase
        known = ", ".join(str(p.id) for p in self.phases)
        raise RoadmapError(f"there is no phase {number}", hint=f"the roadmap has phases {known}")

    def tasks(self) -> list[tuple[Phase, Task]]:
        return [(phase, task) for phase in self.phases for task in phase.tasks]

    def task(self, task_id: str) -> tuple[Phase, Task]:
        for phase, task in self.tasks():
            if task.id == task_id:
                return phase, task
        raise RoadmapError(
            f"there is no task {task_id!r}",
            hint="`migrate status` lists the tasks of every phase",
        )

    def to_data(self) -> dict[str, Any]:
        """The YAML shape of this roadmap (round-trips through `load_roadmap`)."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_defaults=True)
        return data


def default_roadmap_path() -> Path:
    from migrate.resources import resource_path

    return resource_path("phases") / "roadmap.yaml"


def load_roadmap(path: Path) -> Roadmap:
    from migrate import yamlfile

    located = yamlfile.load(path, error=RoadmapError, what="roadmap")
    return parse_roadmap(located)


def parse_roadmap(located: Located) -> Roadmap:
    from migrate import yamlfile

    roadmap: Roadmap = yamlfile.validate(Roadmap, located, error=RoadmapError)
    _check_rules(roadmap, located)
    roadmap._located = located
    return roadmap


def _fail(located: Located, loc: Loc, message: str, hint: str | None = None) -> RoadmapError:
    return RoadmapError(
        message, file=located.file, line=located.line_of(loc), key=format_loc(loc), hint=hint
    )


def _check_rules(roadmap: Roadmap, located: Located) -> None:
    if not roadmap.phases:
        raise _fail(located, ("phases",), "the roadmap has no phases")
    for index, phase in enumerate(roadmap.phases):
        if phase.id != index + 1:
            raise _fail(
                located,
                ("phases", index, "id"),
                f"phase id {phase.id} is out of order: phases are numbered 1..n in file order, "
                f"so this one must be {index + 1}",
            )

    where: dict[str, tuple[int, int]] = {}
    for p_index, phase in enumerate(roadmap.phases):
        for t_index, task in enumerate(phase.tasks):
            if task.id in where:
                first = where[task.id]
                first_line = located.line_of(("phases", first[0], "tasks", first[1], "id"))
                raise _fail(
                    located,
                    ("phases", p_index, "tasks", t_index, "id"),
                    f"duplicate task id {task.id!r} (first at line {first_line})",
                    hint="task ids are unique across the whole roadmap; rename one",
                )
            where[task.id] = (p_index, t_index)

    for p_index, phase in enumerate(roadmap.phases):
        for t_index, task in enumerate(phase.tasks):
            base: Loc = ("phases", p_index, "tasks", t_index)
            for n_index, need in enumerate(task.needs):
                loc = (*base, "needs", n_index)
                if need == task.id:
                    raise _fail(located, loc, f"task {task.id!r} needs itself")
                if need not in where:
                    raise _fail(
                        located,
                        loc,
                        f"task {task.id!r} needs unknown task {need!r}",
                        hint=f"known tasks: {', '.join(where)}",
                    )
                if where[need][0] > p_index:
                    raise _fail(
                        located,
                        loc,
                        f"task {task.id!r} of phase {phase.id} needs {need!r} of the later "
                        f"phase {roadmap.phases[where[need][0]].id}",
                        hint="a task may need tasks of its own or an earlier phase",
                    )

    cycle = _find_cycle(roadmap)
    if cycle:
        p_index, t_index = where[cycle[0]]
        raise _fail(
            located,
            ("phases", p_index, "tasks", t_index, "needs"),
            f"the needs of these tasks form a cycle: {' -> '.join(cycle)}",
            hint="remove one of these needs",
        )


def _find_cycle(roadmap: Roadmap) -> list[str] | None:
    needs = {task.id: task.needs for _, task in roadmap.tasks()}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for need in needs.get(node, []):
            if state.get(need) == 1:
                return [*stack[stack.index(need) :], need]
            if need not in state:
                found = visit(need)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for task_id in needs:
        if task_id not in state:
            found = visit(task_id)
            if found:
                return found
    return None
