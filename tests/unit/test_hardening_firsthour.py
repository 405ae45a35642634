"""Issue 13, a new user's first hour (items 16, 17, 19, 21, 22, 23, 24), through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from migrate.cli.app import app
from tests.conftest import REPO, write


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


# --- item 16: data/ and no plugins ---------------------------------------------------------


def test_init_with_data_and_no_plugins_warns_and_renders_no_ingress(tmp_path: Path) -> None:
    write(tmp_path / "app" / "data" / "users" / "users.jsonl", '{"id": 1}\n')
    project = tmp_path / "project"
    init = run("-C", str(project), "init", "--source", "../app")
    assert init.exit_code == 0, init.output
    assert "warning: no plugins in" in init.stderr and "only the data is migrated" in init.stderr
    out = tmp_path / "out"
    render = run("-C", str(project), "render", "--out", str(out))
    assert render.exit_code == 0, render.output
    assert "paths" not in render.output and "internal error" not in render.output
    rendered = sorted(p.name for p in (out / "phase-2").iterdir())
    assert rendered and not [name for name in rendered if name.startswith("ingress")], rendered
    # nothing routes to plugins; the orchestrator (phase 3) comes with its bus, the queue's
    # Redis, and the policy that lets it in: the set holds together
    everything = [p.name for p in out.glob("phase-*/*.yaml")]
    assert "networkpolicy-allow-ingress-controller-to-plugins.yaml" not in everything
    phase3 = sorted(p.name for p in (out / "phase-3").iterdir())
    assert "deployment-project-orchestrator.yaml" in phase3, phase3
    assert "statefulset-project-queue.yaml" in phase3 and "service-project-queue.yaml" in phase3
    assert not [name for name in phase3 if name.startswith("deployment-") and "worker" in name]
    [allow_queue] = out.glob("phase-*/networkpolicy-allow-queue.yaml")
    policy = yaml.safe_load(allow_queue.read_text())
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/component": "queue"}
    }
    [admitted] = [
        e["values"]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
        for e in peer.get("podSelector", {}).get("matchExpressions", [])
        if e["key"] == "app.kubernetes.io/component"
    ]
    assert "orchestrator" in admitted, policy
    orchestrator = yaml.safe_load(
        (out / "phase-3" / "deployment-project-orchestrator.yaml").read_text()
    )
    env = {
        e["name"]: e.get("value")
        for e in orchestrator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["REDIS_URL"].startswith("redis://project-queue."), env
    plan = run("-C", str(project), "plan")
    assert plan.exit_code == 0, plan.output
    assert "0 error(s)" in plan.stdout
    findings = json.loads(run("-C", str(project), "plan", "-o", "json").stdout)["findings"]
    assert not [f for f in findings if f["severity"] == "error"], findings
    assert not [f for f in findings if f["rule"] == "runtime-address-rendered"], findings
    # the empty event graph stays a warning: the orchestrator runs, no plugin consumes anything
    assert [f for f in findings if "MIGRATE_EVENT_GRAPH is empty" in f["message"]], findings


def test_init_json_carries_the_warnings(tmp_path: Path) -> None:
    write(tmp_path / "app" / "data" / "users" / "users.jsonl", '{"id": 1}\n')
    result = run("-C", str(tmp_path / "p"), "init", "--source", "../app", "-o", "json")
    assert result.exit_code == 0, result.output
    [warning] = json.loads(result.stdout)["warnings"]
    assert "no plugins" in warning


# --- item 17: plugin.yaml without entrypoint, and no plugin.py ------------------------------


def test_init_warns_about_a_default_entrypoint_with_no_plugin_py(tmp_path: Path) -> None:
    write(tmp_path / "app" / "plugins" / "mailer" / "plugin.yaml", "name: mailer\nversion: 1\n")
    write(tmp_path / "app" / "plugins" / "mailer" / "main.py", "def handle(p):\n    return p\n")
    write(tmp_path / "app" / "plugins" / "fine" / "plugin.yaml", "name: fine\n")
    write(tmp_path / "app" / "plugins" / "fine" / "plugin.py", "def handle(p):\n    return p\n")
    result = run("-C", str(tmp_path / "p"), "init", "--source", "../app")
    assert result.exit_code == 0, result.output
    stderr = " ".join(result.stderr.split())
    assert "mailer/plugin.yaml: no entrypoint is set" in stderr, stderr
    assert "plugin:handle" in stderr and "mailer/plugin.py does not exist" in stderr
    assert "entrypoint: module:function" in stderr
    assert "fine" not in stderr  # its default entrypoint exists


# --- item 19: apply --only tells the phase's truth ------------------------------------------


def test_apply_only_says_how_much_of_the_phase_is_done(project: Path) -> None:
    result = run("-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes")
    assert result.exit_code == 0, result.output
    status = json.loads(run("-C", str(project), "status", "-o", "json").stdout)
    [phase] = [p for p in status["phases"] if p["id"] == 1]
    done, total = sum(t["done"] for t in phase["tasks"]), len(phase["tasks"])
    assert 0 < done < total
    text = " ".join(result.stdout.split())
    assert f"phase 1: {phase['name']} ({done} of {total} tasks done)" in text, text
    assert "(done)" not in text
    document = json.loads(
        run(
            "-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes",
            "-o", "json",
        ).stdout
    )  # fmt: skip
    assert document["phase_progress"] == {"done": done, "tasks": total}


# --- item 21: progress never passes its total -----------------------------------------------


class TotalsReporter:
    """Records each bar's total and how far it was advanced."""

    def __init__(self) -> None:
        self.totals: dict[str, float | None] = {}
        self.advanced: dict[str, float] = {}

    def start(
        self, key: str, description: str, total: float | None = None, unit: str = "items"
    ) -> None:
        self.totals[key], self.advanced[key] = total, 0

    def advance(self, key: str, amount: float = 1) -> None:
        self.advanced[key] += amount
        total = self.totals[key]
        assert total is None or self.advanced[key] <= total, (key, self.advanced[key], total)

    def done(self, key: str, message: str | None = None) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


@pytest.mark.parametrize("extra", [2, 0, -3])  # the engine counts more, as many, fewer steps
@pytest.mark.parametrize("push", [False, True])
def test_image_progress_never_overshoots(
    project: Path, monkeypatch: pytest.MonkeyPatch, extra: int, push: bool
) -> None:
    from migrate.images import builder
    from migrate.images.targets import plan_targets
    from migrate.project import open_context

    reporter = TotalsReporter()
    ctx = open_context(project, reporter)
    [target] = plan_targets(ctx, [ctx.inventory.plugins[0]])
    assert target.context is not None
    engine_total = builder._instruction_count(target.context.dockerfile) + 1 + extra

    def build(client: object, subject: str, tar: object, image: str, labels: object,
              on_step: Callable[[int, int], None]) -> list[str]:  # fmt: skip
        for step in range(1, engine_total + 1):
            on_step(step, engine_total)
            on_step(step, engine_total)  # cached steps print again
        return [f"Step {engine_total}/{engine_total} : done"]

    monkeypatch.setattr(builder.engine, "exists", lambda client, image: False)
    monkeypatch.setattr(builder.engine, "build", build)
    monkeypatch.setattr(builder.engine, "push", lambda client, subject, image: None)
    monkeypatch.setattr(builder.wheelhouse, "resolve", lambda *args, **kwargs: [])
    monkeypatch.setattr(builder, "python_environment", lambda ctx, client: {})
    builder.build_target(ctx, object(), target, push=push)  # type: ignore[arg-type]
    assert reporter.advanced[target.key] == reporter.totals[target.key]  # full, not past it


# --- item 22: errors that name file:line, and say what is wrong -----------------------------


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` (once) in `path`; return the 1-based line it was on."""
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


def one_line(result: Result) -> str:
    return " ".join(result.stderr.split())


def test_unknown_template_names_the_roadmap_line(project: Path) -> None:
    roadmap = project / "phases" / "roadmap.yaml"
    line = edit(roadmap, "template: ci/gitlab-ci.yml.j2", "template: ci/nope.yml.j2")
    result = run("-C", str(project), "plan", "--phase", "1")
    assert result.exit_code == 1
    assert f"roadmap.yaml:{line}: " in result.stderr, result.stderr
    assert "template 'ci/nope.yml.j2' not found" in result.stderr


def test_unknown_variable_names_the_roadmap_line(project: Path) -> None:
    roadmap = project / "phases" / "roadmap.yaml"
    line = edit(roadmap, "path: .gitlab-ci.yml\n", 'path: "{{ target.nope }}/ci.yml"\n')
    result = run("-C", str(project), "plan", "--phase", "1")
    assert result.exit_code == 1
    assert f"roadmap.yaml:{line}: " in result.stderr and "target.nope" in result.stderr


def test_a_tab_in_migrate_yaml_is_named(project: Path) -> None:
    config = project / "migrate.yaml"
    line = edit(config, "  namespace:", "\tnamespace:")
    result = run("-C", str(project), "plan")
    assert result.exit_code == 1
    assert f"migrate.yaml:{line}: tab characters are not allowed in YAML indentation" in (
        one_line(result)
    )
    assert "cannot start any token" not in result.stderr


def test_a_refused_yaml_tag_gets_an_accurate_hint(project: Path) -> None:
    config = project / "migrate.yaml"
    line = edit(config, "project: ", "evil: !!python/name:os.system\nproject: ")
    result = run("-C", str(project), "plan")
    assert result.exit_code == 1
    text = one_line(result)
    assert f"migrate.yaml:{line}: the YAML tag '!!python/name:os.system' is not allowed" in text
    assert "remove the tag" in text
    assert "indentation, a missing ':' or quote" not in text  # the old, misleading hint


def test_rollback_of_an_unknown_phase_says_so(project: Path) -> None:
    result = run("-C", str(project), "rollback", "--phase", "9", "--yes")
    assert result.exit_code == 1
    assert "there is no phase 9" in result.stderr and "nothing to roll back" not in result.stderr
    assert "phases 1, 2, 3, 4" in result.stderr


def test_only_names_the_phase_of_the_task(project: Path) -> None:
    result = run("-C", str(project), "apply", "--phase", "2", "--only", "ci-cd-pipelines", "--yes")
    assert result.exit_code == 1
    text = one_line(result)
    assert "task 'ci-cd-pipelines' is in phase 1" in text and "--phase 1" in text
    assert "is not done" not in text  # the wrong task is the mistake, said first


def test_a_relative_source_that_does_not_exist_says_relative_to_what(tmp_path: Path) -> None:
    (tmp_path / "app" / "data").mkdir(parents=True)
    result = run("-C", str(tmp_path / "project"), "init", "--source", "app")  # should be ../app
    assert result.exit_code == 1
    text = one_line(result)
    assert "the source application app does not exist in" in text
    assert "relative to the project directory (-C" in text


# --- item 23: the example data generator parses its arguments -------------------------------


def generator(tmp_path: Path) -> Path:
    """A copy of the generator: its default output is beside it, in tmp_path."""
    script = tmp_path / "make_agents_app_data.py"
    script.write_bytes((REPO / "examples" / "make_agents_app_data.py").read_bytes())
    return script


def test_generator_help_writes_nothing(tmp_path: Path) -> None:
    script = generator(tmp_path)
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--records N" in result.stdout and "--out DIR" in result.stdout
    assert not (tmp_path / "agents-app").exists()
    wrong = subprocess.run(
        [sys.executable, str(script), "--records", "many"], capture_output=True, check=False
    )
    assert wrong.returncode == 2 and not (tmp_path / "agents-app").exists()


def test_generator_size_and_output_options(tmp_path: Path) -> None:
    script = generator(tmp_path)
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(script), "--records", "7", "--out", str(out)], check=True)
    runs = sorted((out / "agent_runs").glob("*.jsonl"))
    assert len(runs) == 3 and all(len(p.read_text().splitlines()) == 7 for p in runs)
    refused = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, check=False
    )
    assert refused.returncode == 2 and script.exists()  # never wipes a directory of other files


def test_generator_default_is_the_committed_data(tmp_path: Path) -> None:
    script = generator(tmp_path)
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    made, committed = tmp_path / "agents-app" / "data", REPO / "examples" / "agents-app" / "data"
    names = sorted(str(p.relative_to(made)) for p in made.rglob("*") if p.is_file())
    assert names == sorted(
        str(p.relative_to(committed)) for p in committed.rglob("*") if p.is_file()
    )
    for name in names:
        assert (made / name).read_bytes() == (committed / name).read_bytes(), name


# --- item 24: the report's diagram is a picture; verify says each result once ---------------


def test_html_report_draws_the_roadmap_as_inline_svg(project: Path) -> None:
    import xml.etree.ElementTree as ET

    roadmap = project / "phases" / "roadmap.yaml"
    edit(roadmap, "title: Configure CI/CD pipelines", 'title: "CI <script>alert(1)</script> & co"')
    applied = run("-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes")
    assert applied.exit_code == 0, applied.output
    result = run("-C", str(project), "report", "--format", "html", "--out", "b.html")
    assert result.exit_code == 0, result.output
    page = (project / "b.html").read_text()
    assert "mermaid" not in page and "flowchart" not in page  # no diagram source as text
    assert "<script" not in page  # renders offline, with nothing to run
    start = page.index('<svg xmlns="http://www.w3.org/2000/svg" class="roadmap-diagram"')
    end = page.index("</svg>", start) + len("</svg>")
    picture = ET.fromstring(page[start:end])  # well-formed, escaped
    ns = "{http://www.w3.org/2000/svg}"
    texts = " ".join(span.text or "" for span in picture.iter(f"{ns}tspan"))
    assert "Phase 1: Infrastructure Preparation" in texts
    assert "✔ CI <script>alert(1)</script> & co" in texts  # done: ticked
    assert "✔ Set up Kubernetes cluster" not in texts
    assert len(picture.findall(f"{ns}path")) >= 3  # phase -> phase arrows
    markdown = run("-C", str(project), "report").stdout
    assert "```mermaid" in markdown  # the Markdown report keeps its Mermaid block


def test_verify_in_a_terminal_prints_each_result_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from migrate.cli import output

    stderr = io.StringIO()
    console = Console(file=stderr, force_terminal=True, force_interactive=False, width=200)
    monkeypatch.setattr(output, "err", lambda: console)
    applied = run("-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes")
    assert applied.exit_code == 0, applied.output
    stderr.seek(0), stderr.truncate()
    result = run("-C", str(project), "verify", "--phase", "1")
    shown = result.stdout + stderr.getvalue()
    name = "the GitHub Actions workflow runs `migrate ci`"
    assert result.stdout.count(name) == 1, result.stdout
    assert shown.count(name) == 1, shown


def test_verify_to_a_pipe_keeps_its_log_lines(project: Path) -> None:
    applied = run("-C", str(project), "apply", "--phase", "1", "--only", "ci-cd-pipelines", "--yes")
    assert applied.exit_code == 0, applied.output
    result = run("-C", str(project), "verify", "--phase", "1")
    assert "pass  ci-cd-pipelines: the GitHub Actions workflow" in result.stderr  # CI logs
