"""Issue 13, item 1: hostile plugin text never changes the structure of a generated file.

A plugin's name, version and description come from its plugin.yaml: anyone who
writes a plugin controls them. Rendered through `migrate init` and `migrate
apply --only dev-environments` (the CLI, as a user runs it), every generated
file must parse and hold exactly the structure the template intends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrate.cli.app import app
from migrate.images.context import assemble
from migrate.project import open_context
from tests.conftest import EXAMPLE_APP, require_service, write

EVIL_NAME = 'x\n  evil:\n    image: alpine\n    privileged: true\n    volumes: ["/:/host"]\n  #'
EVIL_VERSION = "1\n  evil2: {image: alpine, privileged: true}\n  #"
EVIL_DESCRIPTION = '$HOME ${PATH} "q" \\ back\nLABEL evil=1\nRUN rm -rf / # \u2028 done'


@pytest.fixture
def hostile_project(tmp_path: Path) -> Path:
    source = tmp_path / "app"
    shutil.copytree(EXAMPLE_APP, source)
    manifest = {
        "name": EVIL_NAME,
        "version": EVIL_VERSION,
        "entrypoint": "plugin:handle",
        "description": EVIL_DESCRIPTION,
    }
    write(source / "plugins" / "evil" / "plugin.yaml", yaml.safe_dump(manifest))
    write(source / "plugins" / "evil" / "plugin.py", "def handle(p):\n    return p\n")
    project = tmp_path / "project"
    result = CliRunner().invoke(app, ["-C", str(project), "init", "--source", str(source)])
    assert result.exit_code == 0, result.output
    return project


def test_hostile_plugin_text_stays_out_of_the_dev_files(hostile_project: Path) -> None:
    args = ["-C", str(hostile_project), "apply", "--phase", "1", "--only", "dev-environments"]
    result = CliRunner().invoke(app, [*args, "--yes", "--force"])
    assert result.exit_code == 0, result.output
    compose = yaml.safe_load((hostile_project / "dev" / "compose.yaml").read_text())
    assert set(compose) == {"services"}  # the containers of `migrate dev up` (issue 12, item 9)
    services = compose["services"]
    keys = {"image", "pull_policy", "network_mode", "restart", "labels"}
    for name, service in services.items():
        assert re.fullmatch(r"project-dev-[a-z0-9][a-z0-9._-]*", name)
        assert keys <= set(service) <= keys | {"command", "environment", "depends_on"}
    assert not {"privileged", "volumes", "evil", "evil2"} & _keys(compose)  # as text only
    [evil] = [s for s in services.values() if s["labels"]["io.migrate.plugin"] == EVIL_NAME]
    assert evil["environment"]["MIGRATE_PLUGIN"] == EVIL_NAME  # the name, as a value only
    text = (hostile_project / "dev" / "compose.yaml").read_text()
    assert json.dumps(EVIL_NAME)[1:-1] in text  # still named, in quoted strings and comments
    devcontainer = json.loads((hostile_project / ".devcontainer" / "devcontainer.json").read_text())
    assert devcontainer["name"] == "project"


def _keys(node: object) -> set[str]:
    """Every mapping key in a parsed document, at any depth."""
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in _keys(value)}
    if isinstance(node, list):
        return {k for item in node for k in _keys(item)}
    return set()


# -- the Dockerfile ---------------------------------------------------------------------------


def instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in joined.split("\n")]  # Docker: only \n ends a line
    return [line for line in lines if line and not line.startswith("#")]


def docker_words(text: str) -> list[str]:
    """Split `text` as Docker's shell lexer does, and fail on a `$` it would expand.

    In a double-quoted word `\\"`, `\\$` and `\\\\` are escapes, every other
    backslash is itself; an unescaped `$` is a variable (moby shell/lex.go)."""
    words: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        word = ""
        while i < len(text) and text[i] != " ":
            if text[i] == '"':
                i += 1
                while text[i] != '"':
                    if text[i] == "\\" and text[i + 1] in '"$\\':
                        word += text[i + 1]
                        i += 2
                        continue
                    assert text[i] != "$", f"Docker would expand a variable in {text!r}"
                    word += text[i]
                    i += 1
                i += 1
            else:
                assert text[i] != "$", f"Docker would expand a variable in {text!r}"
                word += text[i]
                i += 1
        words.append(word)
    return words


def labels(dockerfile: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in instructions(dockerfile):
        if line.startswith("LABEL "):
            for word in docker_words(line.removeprefix("LABEL ")):
                key, _, value = word.partition("=")
                found[key] = value
    return found


def test_hostile_plugin_text_stays_inside_the_dockerfile_labels(hostile_project: Path) -> None:
    ctx = open_context(hostile_project)
    by_name = {plugin.name: plugin for plugin in ctx.inventory.plugins}
    evil = assemble(ctx, by_name[EVIL_NAME]).dockerfile
    plain = assemble(ctx, by_name["planner"]).dockerfile
    kinds = [line.split()[0] for line in instructions(evil)]
    assert kinds == [line.split()[0] for line in instructions(plain)]  # no instruction added
    assert kinds.count("LABEL") == 2 and "evil" not in labels(evil)
    found = labels(evil)
    flat = EVIL_DESCRIPTION.replace("\n", " ")  # a line break would end the instruction
    assert found["org.opencontainers.image.description"] == flat
    assert found["io.migrate.plugin"] == EVIL_NAME.replace("\n", " ")
    assert found["org.opencontainers.image.version"] == EVIL_VERSION.replace("\n", " ")


def test_docker_keeps_a_dollar_in_a_label_literally(hostile_project: Path) -> None:
    """The real lexer: build the LABEL lines on the base image and read the labels back."""
    import io

    from migrate.images.errors import DockerUnavailableError

    base = os.environ.get("MIGRATE_TEST_BASE_IMAGE", "")
    try:
        import docker

        from migrate.images import engine

        engine.connect().close()
        client = docker.from_env(timeout=120)
        client.images.get(base)
    except (DockerUnavailableError, ImportError, Exception) as exc:
        require_service("Docker", f"Docker and MIGRATE_TEST_BASE_IMAGE are needed: {exc}")
        return
    ctx = open_context(hostile_project)
    plugin = next(p for p in ctx.inventory.plugins if p.name == EVIL_NAME)
    label_lines = [line for line in instructions(assemble(ctx, plugin).dockerfile)]
    label_lines = [line for line in label_lines if line.startswith(("LABEL", "ENV"))]
    dockerfile = "\n".join([f"FROM {base}", *label_lines, 'LABEL io.migrate.test="1"', ""])
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), rm=True, pull=False, network_mode="none"
    )
    try:
        config = image.attrs["Config"]
        assert config["Labels"]["org.opencontainers.image.description"] == EVIL_DESCRIPTION.replace(
            "\n", " "
        )
        assert "evil" not in config["Labels"]
        env = dict(item.partition("=")[::2] for item in config["Env"])
        assert env["MIGRATE_PLUGIN"] == EVIL_NAME.replace("\n", " ")
    finally:
        client.images.remove(image.id, force=True)
        client.close()
