"""The orchestrator's image (DESIGN 3.9) and the runtime in every image, without an engine:
contexts, names, selection, and the manifests naming exactly the tags `images build` reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from migrate import api
from migrate.cli.app import app
from migrate.errors import UserError
from migrate.images import context as contexts
from migrate.images import engine
from migrate.images.builder import orchestrator_target, plan_targets, select
from migrate.images.context import assemble, assemble_orchestrator
from migrate.project import open_context
from tests.conftest import write
from tests.unit.runtime_copy import runtime_copy_fixture  # noqa: F401  (fixtures)

HEX12 = r"[0-9a-f]{12}"


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def engine_has_everything(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An engine that answers and has every tag asked about: a build builds nothing.
    Returns the references it was asked about."""
    asked: list[str] = []

    def exists(client: Any, reference: str) -> bool:
        asked.append(reference)
        return True

    monkeypatch.setattr(engine, "connect", lambda: object())
    monkeypatch.setattr(engine, "exists", exists)
    # the calls that ask a local engine over its socket without the SDK answer the same
    monkeypatch.setattr(engine, "present", lambda references, client=None: set())
    monkeypatch.setattr(
        engine, "which_exist", lambda references: {r: exists(None, r) for r in set(references)}
    )
    return asked


def test_orchestrator_context(project: Path) -> None:
    ctx = open_context(project)
    built = assemble_orchestrator(ctx)
    assert built.role == "orchestrator" and built.plugin is None
    assert not any(p.startswith("plugin/") for p in built.paths)
    assert "runtime/migrate_runtime/__main__.py" in built.paths
    assert "runtime/migrate_runtime/bus/__init__.py" in built.paths
    assert built.requirements == (
        *contexts.runtime_requirements(),
        *[r for r in contexts.runtime_requirements("orchestrator") if r.startswith("psycopg")],
    )
    assert any(r.startswith("psycopg[binary]") for r in built.requirements)
    dockerfile = built.dockerfile
    assert "MIGRATE_ROLE=orchestrator" in dockerfile
    assert "USER 10001:10001" in dockerfile and "HEALTHCHECK" in dockerfile
    assert 'io.migrate.role="orchestrator"' in dockerfile
    assert 'io.migrate.project="project"' in dockerfile
    assert "io.migrate.plugin" not in dockerfile
    assert "--no-index --find-links" in dockerfile and "\nFROM python:3.11-slim\n" in dockerfile
    assert built.digest == assemble_orchestrator(open_context(project)).digest  # stable


def test_orchestrator_reference_is_its_content_hash(project: Path) -> None:
    import re

    ctx = open_context(project)
    target = orchestrator_target(ctx)
    assert target.error is None and target.context is not None
    assert re.fullmatch(rf"project/project-orchestrator:{HEX12}", target.image)
    assert target.image.endswith(":" + target.context.short_hash)
    assert "latest" not in target.image
    config = project / "migrate.yaml"
    config.write_text(config.read_text().replace("target:\n", "target:\n  registry: reg:5000/t\n"))
    image = orchestrator_target(open_context(project)).image
    assert re.fullmatch(rf"reg:5000/t/project-orchestrator:{HEX12}", image)


def test_runtime_and_its_requirements_are_in_every_hash(project: Path, runtime_copy: Path) -> None:
    def digests() -> dict[str, str]:
        ctx = open_context(project)
        found = {p.name: assemble(ctx, p).digest for p in ctx.inventory.plugins}
        found["(orchestrator)"] = assemble_orchestrator(ctx).digest
        return found

    before = digests()
    requirements = runtime_copy / "requirements.txt"
    requirements.write_text(requirements.read_text() + "\n# a comment changes nothing\n")
    assert digests() == before  # the list is what counts, not its comments
    requirements.write_text(requirements.read_text() + "tenacity==9.0.0\n")
    after_pin = digests()
    assert all(after_pin[name] != digest for name, digest in before.items())
    write(runtime_copy / "bus" / "extra.py", "X = 1\n")
    after_module = digests()
    assert all(after_module[name] != digest for name, digest in after_pin.items())
    ctx = open_context(project)
    assert "runtime/migrate_runtime/bus/extra.py" in assemble_orchestrator(ctx).paths
    orchestrator_only = runtime_copy / "requirements-orchestrator.txt"
    orchestrator_only.write_text(orchestrator_only.read_text() + "psutil==6.0.0\n")
    after_driver = digests()
    changed = {name for name in after_driver if after_driver[name] != after_module[name]}
    assert changed == {"(orchestrator)"}


def test_a_plugin_named_orchestrator_keeps_its_own_repository(
    project: Path, example_app: Path
) -> None:
    write(example_app / "plugins" / "orchestrator" / "plugin.py", "def handle(p):\n    return p\n")
    ctx = open_context(project)
    [plugin] = plan_targets(ctx, [ctx.inventory.plugin("orchestrator")])
    orchestrator = orchestrator_target(ctx)
    assert plugin.image.startswith("project/orchestrator:") and plugin.role == "service"
    assert orchestrator.error is None
    assert orchestrator.image.startswith("project/project-orchestrator:")
    assert plugin.key != orchestrator.key and plugin.log_name != orchestrator.log_name


def test_a_plugin_that_takes_the_orchestrators_repository_is_refused(
    project: Path, example_app: Path
) -> None:
    write(example_app / "plugins" / "Project_Orchestrator" / "plugin.py", "def handle(p): ...\n")
    ctx = open_context(project)
    target = orchestrator_target(ctx)
    assert target.error is not None
    message = target.error.render()
    assert "the orchestrator image: its repository project/project-orchestrator" in message
    assert "plugin 'Project_Orchestrator'" in message and "rename" in message
    with pytest.raises(UserError, match="its repository project/project-orchestrator"):
        api.render(project, out=project / "out")
    [plugin] = plan_targets(ctx, [ctx.inventory.plugin("Project_Orchestrator")])
    assert plugin.error is None  # the plugin itself builds


def test_selection(project: Path) -> None:
    ctx = open_context(project)
    every = {p.name for p in ctx.inventory.plugins}

    def chosen(plugins: list[str] | None, orchestrator: bool | None) -> tuple[set[str], bool]:
        selection = select(ctx, plugins, orchestrator)
        return {p.name for p in selection.plugins}, selection.orchestrator

    assert chosen(None, None) == (every, True)
    assert chosen(None, False) == (every, False)
    assert chosen(None, True) == (set(), True)
    assert chosen(["planner"], None) == ({"planner"}, False)
    assert chosen(["planner"], True) == ({"planner"}, True)
    assert chosen(["planner"], False) == ({"planner"}, False)


def test_build_reports_role_and_the_orchestrator(
    project: Path, engine_has_everything: list[str]
) -> None:
    result = run("-C", str(project), "images", "build", "--output", "json")
    assert result.exit_code == 0, result.output
    images = json.loads(result.stdout)["images"]
    assert len(images) == 7
    [orchestrator] = [i for i in images if i["role"] == "orchestrator"]
    assert orchestrator["plugin"] is None and orchestrator["built"] is False
    assert orchestrator["image"].startswith("project/project-orchestrator:")
    assert {i["role"] for i in images if i["plugin"] is not None} == {"service"}

    def built(*args: str) -> list[tuple[str | None, str]]:
        result = run("-C", str(project), "images", "build", "-o", "json", *args)
        assert result.exit_code == 0, result.output
        return [(i["plugin"], i["role"]) for i in json.loads(result.stdout)["images"]]

    assert built("--plugin", "planner") == [("planner", "service")]
    assert built("--orchestrator") == [(None, "orchestrator")]
    assert built("--plugin", "planner", "--orchestrator") == [
        ("planner", "service"),
        (None, "orchestrator"),
    ]
    assert (None, "orchestrator") not in built("--no-orchestrator")
    assert len(built("--no-orchestrator")) == 6
    table = run("-C", str(project), "images", "build", "--orchestrator")
    assert table.exit_code == 0 and "(orchestrator)" in table.stdout


def test_manifests_name_exactly_the_built_tags(
    project: Path, engine_has_everything: list[str]
) -> None:
    from migrate.manifests.render import render_project

    reported = api.images_build(project)
    assert not reported.failures
    built = {o.plugin: o.image for o in reported.images}
    orchestrator = built.pop(None)

    deployments: dict[str, list[str]] = {}
    for phase in render_project(open_context(project)):
        for manifest in phase.manifests:
            if manifest.kind == "Deployment":
                containers = manifest.obj["spec"]["template"]["spec"]["containers"]
                deployments[manifest.name] = [c["image"] for c in containers]
    assert deployments["project-orchestrator"] == [orchestrator]
    workers = {name: images for name, images in deployments.items() if name.endswith("-worker")}
    assert len(workers) == len(built)
    assert {image for images in workers.values() for image in images} == set(built.values())
    ours = {i for images in deployments.values() for i in images if i.startswith("project/")}
    assert ours <= {*built.values(), orchestrator}  # no :latest, no tag that is never built
    assert set(engine_has_everything) >= ours


def test_list_and_rollback_take_the_orchestrator_option(project: Path) -> None:
    for verb in ("list", "rollback"):
        result = run("-C", str(project), "images", verb, "--help")
        assert result.exit_code == 0 and "--orchestrator" in result.stdout
