"""`migrate images` against a real Docker engine (issue 4's acceptance list)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from migrate import api
from migrate.cli.app import app
from migrate.reporting import RecordingReporter
from tests.conftest import write
from tests.integration.images.conftest import (
    TEST_LABEL,
    BuiltExample,
    http,
    project_name,
    run_plugin,
    set_target,
)

pytestmark = pytest.mark.integration

PAYLOADS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # plugin: (payload, expected subset of the result)
    "planner": ({"goal": "write code then test it"}, {"event": "plan.ready", "step_count": 2}),
    "code_reviewer": ({"code": "print(1)\n"}, {"event": "review.done", "issue_count": 1}),
    "Report-Writer": ({"title": "Weekly"}, {"event": "report.ready", "title": "Weekly"}),
    "notifier": ({"channel": "slack", "summary": "hi"}, {"event": "notification.sent"}),
    "summarizer": (  # needs python-slugify, installed offline from the wheelhouse
        {"text": "Kubernetes runs pods. Pods run containers.", "title": "Héllo Wörld!"},
        {"event": "summary.ready", "slug": "hello-world"},
    ),
    "web_researcher": ({"query": "kubernetes pods"}, {"event": "research.done"}),
}


def run(project: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["-C", str(project), *args])


def build_json(project: Path, *args: str) -> dict[str, Any]:
    result = run(project, "images", "build", "--output", "json", *args)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_every_plugin_builds_runs_and_answers(
    built_example: BuiltExample, built_project: Path, docker_client: Any
) -> None:
    document = built_example.document  # the JSON of `images build` on a new project
    assert document["version"] == 1
    images = {i["plugin"]: i for i in document["images"] if i["role"] == "service"}
    assert set(images) == set(PAYLOADS)
    assert all(i["built"] is True for i in document["images"])  # the orchestrator's too
    assert [i["plugin"] for i in document["images"] if i["role"] == "orchestrator"] == [None]
    project = project_name(built_project)
    assert images["Report-Writer"]["image"].startswith(f"{project}/report-writer:")

    for plugin, (payload, expected) in PAYLOADS.items():
        image = images[plugin]["image"]
        config = docker_client.images.get(image).attrs["Config"]
        assert config["User"] and config["User"].split(":")[0] not in ("", "0", "root")
        assert config["Healthcheck"]["Test"][-2:] == ["migrate_runtime", "--check"]
        labels = config["Labels"]
        assert labels["io.migrate.plugin"] == plugin and labels["io.migrate.role"] == "service"
        assert labels["io.migrate.source-hash"].startswith(image.rsplit(":", 1)[1])
        assert labels["org.opencontainers.image.title"] == plugin

        container, port = run_plugin(docker_client, image, project)
        status, result = http("POST", f"http://127.0.0.1:{port}/invoke", payload)
        assert status == 200 and expected.items() <= result.items(), (plugin, result)
        uid = container.exec_run(["python3", "-c", "import os; print(os.getuid())"])
        assert uid.exit_code == 0 and int(uid.output) != 0
        assert container.exec_run(["python3", "-m", "migrate_runtime", "--check"]).exit_code == 0
        container.stop(timeout=10)  # SIGTERM: a clean shutdown exits 0
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        lines = container.logs(stderr=False).decode().splitlines()
        assert [json.loads(line)["message"] for line in lines][-1] == "stopped"
        container.remove()


def test_second_build_is_a_noop_and_touching_one_plugin_rebuilds_only_it(
    built_example: BuiltExample, built_project: Path
) -> None:
    # the first build: the session's, of this project (a copy of it, with the same name)
    first = {i["plugin"]: i for i in built_example.document["images"]}
    assert all(i["built"] for i in first.values())
    second = {i["plugin"]: i for i in build_json(built_project)["images"]}
    assert not any(i["built"] for i in second.values())
    assert {p: i["image"] for p, i in second.items()} == {p: i["image"] for p, i in first.items()}

    planner = built_project.parent / "agents-app" / "plugins" / "planner" / "planner.py"
    planner.write_text(planner.read_text() + "\n# touched\n")
    third = {i["plugin"]: i for i in build_json(built_project)["images"]}
    assert [p for p, i in third.items() if i["built"]] == ["planner"]
    assert third["planner"]["image"] != first["planner"]["image"]

    listed = json.loads(run(built_project, "images", "list", "--output", "json").stdout)
    planner_tags = {i["image"]: i["current"] for i in listed["images"] if i["plugin"] == "planner"}
    assert planner_tags == {first["planner"]["image"]: False, third["planner"]["image"]: True}


def test_push_lands_in_the_local_registry(image_project: Path, registry: str) -> None:
    project = project_name(image_project)
    set_target(image_project, registry=f"{registry}/{project}")
    document = build_json(image_project, "--push", "--plugin", "planner", "--plugin", "notifier")
    assert {i["plugin"]: i["pushed"] for i in document["images"]} == {
        "planner": True,
        "notifier": True,
    }
    with urllib.request.urlopen(f"http://{registry}/v2/_catalog?n=1000", timeout=10) as response:
        catalog = json.loads(response.read())["repositories"]
    assert f"{project}/planner" in catalog and f"{project}/notifier" in catalog
    tag = document["images"][0]["image"].rsplit(":", 1)[1]
    name = document["images"][0]["image"].split("/", 1)[1].rsplit(":", 1)[0]
    with urllib.request.urlopen(f"http://{registry}/v2/{name}/tags/list", timeout=10) as response:
        assert tag in json.loads(response.read())["tags"]


def test_rollback_removes_the_created_tags_and_only_those(
    image_project: Path, docker_client: Any
) -> None:
    from migrate.images.builder import plan_targets, select_plugins
    from migrate.project import open_context
    from tests.integration.images.conftest import BASE_IMAGE

    ctx = open_context(image_project)
    [planner] = plan_targets(ctx, select_plugins(ctx, ["planner"]))
    repository, tag = planner.image.rsplit(":", 1)
    docker_client.images.get(BASE_IMAGE).tag(repository, tag)  # a tag migrate did not create
    try:
        reporter = RecordingReporter()
        result = api.images_build(image_project, reporter=reporter)
        built = {o.plugin: o.built for o in result.images}
        started = {key for kind, key, _ in reporter.events if kind == "start"}
        finished = {key for kind, key, _ in reporter.events if kind == "done"}
        keys = {"images", "orchestrator-image"} | {f"image:{p}" for p in PAYLOADS}
        assert started == finished == keys
        assert built.pop("planner") is False and all(built.values())  # None: the orchestrator

        rolled = json.loads(run(image_project, "images", "rollback", "--output", "json").stdout)
        removed = {(r["plugin"], r["role"]) for r in rolled["removed"]}
        assert removed == {(p, "service") for p in PAYLOADS if p != "planner"} | {
            (None, "orchestrator")
        }
        docker_client.images.get(planner.image)  # still there
        listed = api.images_list(image_project)
        assert listed.images == []  # the planted tag has no migrate labels
        again = run(image_project, "images", "rollback")
        assert again.exit_code == 0 and "Nothing to roll back" in again.stdout
    finally:
        docker_client.images.remove(planner.image)


def test_a_planted_env_file_never_reaches_the_image(
    image_project: Path, example_app: Path, docker_client: Any
) -> None:
    plugin = example_app / "plugins" / "notifier"
    write(plugin / ".env", "API_TOKEN=hunter2\n")
    write(plugin / "config" / ".env.local", "API_TOKEN=hunter2\n")
    write(plugin / "tls.pem", "-----BEGIN PRIVATE KEY-----\n")
    [image] = build_json(image_project, "--plugin", "notifier")["images"]
    listing = docker_client.containers.run(
        image["image"],
        [
            "python3",
            "-c",
            "import os; print(sorted(os.path.join(d, f) for d, _, fs in "
            "os.walk('/opt') for f in fs))",
        ],
        network_mode="none",
        remove=True,
        labels={TEST_LABEL: project_name(image_project)},
    ).decode()
    assert "/opt/plugin/plugin.py" in listing
    assert ".env" not in listing and "tls.pem" not in listing


def test_a_broken_plugin_fails_clearly_while_the_others_build(
    image_project: Path, example_app: Path, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(example_app / "plugins" / "broken" / "plugin.yaml", "entrypoint: gone:handle\n")
    write(example_app / "plugins" / "broken" / "other.py", "X = 1\n")
    write(
        example_app / "plugins" / "badreq" / "plugin.yaml",
        "requirements: ['migrate-test-no-such-package==0.0.1']\n",
    )
    write(example_app / "plugins" / "badreq" / "plugin.py", "def handle(p):\n    return p\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # resolve from nothing: fails, and offline
    args = ["--plugin", "planner", "--plugin", "broken", "--plugin", "badreq"]
    result = run(image_project, "images", "build", *args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "2 of 3 image(s) failed (1 ok)" in result.stderr
    assert "plugin broken: entrypoint gone:handle: no module 'gone'" in result.stderr
    assert "plugin badreq: cannot resolve its requirements" in result.stderr
    assert "migrate-test-no-such-package" in result.stderr
    assert "planner" in result.stdout and "built" in result.stdout

    as_json = run(image_project, "images", "build", "--output", "json", *args)
    assert as_json.exit_code == 1
    document = json.loads(as_json.stdout)
    assert sorted(document["failed"]) == ["badreq", "broken"]
    planner = next(i for i in document["images"] if i["plugin"] == "planner")
    assert planner["built"] is False and "error" not in planner  # built by the first run
    docker_client.images.get(planner["image"])


def test_a_failing_build_shows_its_log(image_project: Path, example_app: Path) -> None:
    dockerfile = image_project / "templates" / "docker" / "Dockerfile.j2"
    packaged = Path(__file__).resolve().parents[3] / "templates" / "docker" / "Dockerfile.j2"
    text = packaged.read_text().replace(
        "COPY plugin/", "RUN echo 'about to fail' && exit 3\nCOPY plugin/"
    )
    write(dockerfile, text)
    result = run(image_project, "images", "build", "--plugin", "planner")
    assert result.exit_code == 1
    assert "build log of planner" in result.stderr and "about to fail" in result.stderr
    assert "the image build failed" in result.stderr
    assert (image_project / ".migrate" / "logs" / "images" / "planner.log").is_file()


def test_a_missing_base_image_is_a_clear_error(image_project: Path, registry: str) -> None:
    set_target(image_project, base_image=f"{registry}/migrate-test/no-such-base:0")
    result = run(image_project, "images", "build", "--plugin", "planner")
    assert result.exit_code == 1
    assert "is not in the Docker engine and could not be pulled" in result.stderr
    assert "target.base_image" in result.stderr and "Traceback" not in result.output


def test_the_images_task_of_phase_2(image_project: Path) -> None:
    def task_changes() -> dict[str, str]:
        plan = json.loads(run(image_project, "plan", "--phase", "2", "--output", "json").stdout)
        [task] = [
            t for p in plan["phases"] for t in p["tasks"] if t["id"] == "containerize-services"
        ]
        return {c["resource"]: c["summary"] for c in task["changes"]}

    before = task_changes()
    assert len(before) == 7 and all(s.startswith("build ") for s in before.values())
    assert "orchestrator-image" in before  # six plugins and the orchestrator
    applied = run(
        image_project,
        "apply",
        "--phase",
        "2",
        "--only",
        "containerize-services",
        "--force",
        "--yes",
    )
    assert applied.exit_code == 0, applied.output
    assert set(task_changes().values()) == {"up to date"}
    listed = api.images_list(image_project).images
    assert len(listed) == 7 and [i.role for i in listed].count("orchestrator") == 1

    rolled = run(image_project, "rollback", "--phase", "2", "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert api.images_list(image_project).images == []
    assert task_changes() == before
