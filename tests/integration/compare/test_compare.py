"""`migrate compare` against real containers: equal, different, noise, errors, cleanup."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from migrate import api
from migrate.cli.app import app
from migrate.compare.candidate import LABEL_COMPARE
from migrate.reporting import NullReporter
from tests.integration.images.conftest import project_name


def run(project: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["-C", str(project), *args])


def compare_json(project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run(project, "compare", *args, "--output", "json")
    return result.exit_code, json.loads(result.stdout)


def left_over(client: Any, project: Path) -> list[Any]:
    filters = {"label": [f"io.migrate.project={project_name(project)}", f"{LABEL_COMPARE}=1"]}
    return list(client.containers.list(all=True, filters=filters))


def add_plugin(project: Path, name: str, code: str, requirements: list[str] | None = None) -> None:
    app_dir = project / yaml.safe_load((project / "migrate.yaml").read_text())["source"]["path"]
    directory = (project / app_dir).resolve() / "plugins" / name
    directory.mkdir(parents=True)
    (directory / "plugin.yaml").write_text(
        yaml.safe_dump({"name": name, "entrypoint": "main:handle",
                        "requirements": requirements or []})
    )  # fmt: skip
    (directory / "main.py").write_text(textwrap.dedent(code))


def inputs(project: Path, lines: list[tuple[str, dict[str, Any]]]) -> Path:
    path = project / "inputs.jsonl"
    path.write_text("".join(json.dumps({"plugin": p, "input": i}) + "\n" for p, i in lines))
    return path


def test_every_example_plugin_replays_equal(built_project: Path, docker_client: Any) -> None:
    built = api.images_build(built_project, orchestrator=False)
    assert not built.failures
    code, document = compare_json(built_project, "--sample", "25")
    assert code == 0, document
    assert document["version"] == 1 and document["ok"] is True
    plugins = {p["plugin"]: p for p in document["plugins"]}
    assert sorted(plugins) == [
        "Report-Writer", "code_reviewer", "notifier", "planner", "summarizer", "web_researcher"
    ]  # fmt: skip
    for entry in plugins.values():
        assert entry["replayed"] == entry["equal"] == 25, entry
        assert entry["different"] == entry["errors"] == 0 and entry["examples"] == []
        assert entry["noise"] == []
        assert entry["image"].startswith(project_name(built_project) + "/")
    # the recorded outputs: the code reviewer's records keep issue_count and approved
    assert plugins["code_reviewer"]["recorded"]["compared"] == 25
    assert left_over(docker_client, built_project) == []


CHANGED = """
import os

def handle(payload):
    migrated = os.environ.get("MIGRATE_ROLE") == "service"  # only in the image
    total = payload.get("amount", 0) * 1.075
    out = {"total": round(total, 1 if migrated else 2), "currency": "EUR"}
    name = str(payload.get("name", ""))
    if not (migrated and not name.isascii()):  # the image drops the key for unicode names
        out["name"] = name
    return out
"""

NOISY = """
import datetime, uuid

def handle(payload):
    return {"id": str(uuid.uuid4()), "at": datetime.datetime.now().isoformat(),
            "items": [{"n": n, "trace": uuid.uuid4().hex} for n in range(2)],
            "echo": payload.get("x")}
"""


def test_a_changed_plugin_fails_naming_plugin_path_and_input(
    built_project: Path, docker_client: Any
) -> None:
    add_plugin(built_project, "pricer", CHANGED)
    add_plugin(built_project, "stamper", NOISY)
    assert not api.images_build(built_project, ["pricer", "stamper"], orchestrator=False).failures
    corpus = inputs(
        built_project,
        [("pricer", {"amount": 10, "name": "ascii"}), ("pricer", {"amount": 3, "name": "Zoë"}),
         ("pricer", {"amount": 0, "name": "x"}), ("stamper", {"x": 1}), ("stamper", {"x": 2})],
    )  # fmt: skip
    code, document = compare_json(built_project, "--inputs", str(corpus))
    assert code == 1
    assert document["ok"] is False
    plugins = {p["plugin"]: p for p in document["plugins"]}
    pricer, stamper = plugins["pricer"], plugins["stamper"]
    assert (pricer["replayed"], pricer["equal"], pricer["different"]) == (3, 1, 2)
    assert pricer["errors"] == 0
    assert set(pricer["differing_paths"]) == {"$.total", "$.name"}
    unicode_example = next(e for e in pricer["examples"] if e["input"]["name"] == "Zoë")
    assert {"path": "$.name", "legacy": "Zoë"} in unicode_example["diff"]
    assert {"path": "$.total", "legacy": 3.22, "migrated": 3.2} in unicode_example["diff"]
    # the fresh uuid4s and timestamps are noise, not differences
    assert stamper["different"] == 0 and stamper["equal"] == 2 and stamper["errors"] == 0
    assert set(stamper["noise"]) == {"$.at", "$.id", "$.items[*].trace"}
    assert left_over(docker_client, built_project) == []
    # the table names the plugin, the path and an example input
    text = run(built_project, "compare", "--inputs", str(corpus), "--plugin", "pricer")
    assert text.exit_code == 1
    assert "pricer" in text.output and "$.name" in text.output and "Zoë" in text.output


CRASHER = """
import os

def handle(payload):
    if os.environ.get("MIGRATE_ROLE"):
        os._exit(3)  # dies in the container only
    return {"ok": True}
"""

SLUGGER = """
def handle(payload):
    from slugify import slugify
    return {"slug": slugify(str(payload.get("title", "")))}
"""


def test_missing_requirement_and_crash_are_errors_with_the_containers_message(
    built_project: Path, docker_client: Any
) -> None:
    from migrate.images.targets import plan_targets
    from migrate.project import open_context

    add_plugin(built_project, "crasher", CRASHER)
    add_plugin(built_project, "slugger", SLUGGER)  # built without its requirement...
    assert not api.images_build(built_project, ["crasher", "slugger"], orchestrator=False).failures
    ctx = open_context(built_project)
    built = plan_targets(ctx, [ctx.inventory.plugin("slugger")])[0].image
    plugin_yaml = ctx.inventory.plugin("slugger").path / "plugin.yaml"
    data = yaml.safe_load(plugin_yaml.read_text())
    data["requirements"] = ["python-slugify>=8"]  # ...which the legacy host had
    plugin_yaml.write_text(yaml.safe_dump(data))
    ctx = open_context(built_project)
    current = plan_targets(ctx, [ctx.inventory.plugin("slugger")])[0].image
    repository, _, tag = current.rpartition(":")
    docker_client.images.get(built).tag(repository, tag)  # the image lacks the requirement
    corpus = inputs(
        built_project,
        [("crasher", {"n": 1}), ("crasher", {"n": 2}), ("slugger", {"title": "Hello World"})],
    )
    code, document = compare_json(built_project, "--inputs", str(corpus))
    assert code == 1, document
    plugins = {p["plugin"]: p for p in document["plugins"]}
    crasher, slugger = plugins["crasher"], plugins["slugger"]
    assert (crasher["errors"], crasher["different"]) == (2, 0)
    assert crasher["error_examples"][0]["side"] == "migrated"
    assert "the container exited with code 3" in crasher["error_examples"][0]["message"]
    assert (slugger["errors"], slugger["different"]) == (1, 0)
    assert "No module named 'slugify'" in slugger["error_examples"][0]["message"]
    text = run(built_project, "compare", "--inputs", str(corpus))
    assert text.exit_code == 1 and "Traceback" not in text.output
    assert "No module named 'slugify'" in text.output
    assert left_over(docker_client, built_project) == []


class Interrupt(NullReporter):
    def advance(self, key: str, amount: float = 1) -> None:
        raise KeyboardInterrupt  # Ctrl-C in the middle of a replay


def test_containers_are_removed_after_ctrl_c(built_project: Path, docker_client: Any) -> None:
    assert not api.images_build(built_project, ["planner"], orchestrator=False).failures
    with pytest.raises(KeyboardInterrupt):
        api.compare(built_project, ["planner"], sample=5, reporter=Interrupt())
    assert left_over(docker_client, built_project) == []


def test_an_unbuilt_image_is_a_clear_error(image_project: Path, docker_client: Any) -> None:
    result = run(image_project, "compare", "--plugin", "planner")
    assert result.exit_code == 1
    assert "no image of the present code" in result.output
    assert "migrate images build --plugin planner" in result.output


def test_a_real_sigint_removes_the_container(built_project: Path, docker_client: Any) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to `migrate bench` while its container runs."""
    import os
    import signal
    import subprocess
    import sys
    import time

    assert not api.images_build(built_project, ["planner"], orchestrator=False).failures
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate", "-C", str(built_project), "bench",
         "--plugin", "planner", "--duration", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while not left_over(docker_client, built_project):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the bench container never started"
        time.sleep(0.1)  # poll interval, bounded by the deadline
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert b"Traceback" not in stderr
    assert left_over(docker_client, built_project) == []
