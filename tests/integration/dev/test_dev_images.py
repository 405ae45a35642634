"""`dev up` never pulls unless told: a missing Redis or PostgreSQL image is a clear error."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from tests.integration.dev.conftest import dev_containers, run
from tests.integration.images.conftest import project_name

pytestmark = pytest.mark.integration

ABSENT = "migrate-test/absent-{role}:0"


def set_dev(project: Path, **values: str) -> None:
    config = project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data.setdefault("dev", {}).update(values)
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("role", "flag", "given"),
    [("redis", "--bus-url", "--database-url"), ("postgres", "--database-url", "--bus-url")],
)
def test_missing_image_without_pull_is_an_error_and_nothing_is_pulled(
    dev_project: Path,
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
    flag: str,
    given: str,
) -> None:
    image = ABSENT.format(role=role)
    set_dev(dev_project, **{f"{role}_image": image})
    pulls: list[tuple[Any, ...]] = []
    real_pull = docker.APIClient.pull

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        pulls.append(args)
        return real_pull(self, *args, **kwargs)

    monkeypatch.setattr(docker.APIClient, "pull", spy)
    since = int(time.time()) - 1
    # the other service is "given" (unreachable, never contacted: the check comes first)
    other = "redis://127.0.0.1:1/0" if given == "--bus-url" else "postgresql://u@127.0.0.1:1/d"
    result = run("-C", str(dev_project), "dev", "up", given, other)

    assert result.exit_code == 1, result.output
    message = " ".join(result.stderr.split())
    assert f"the {role} image {image} is not in the Docker engine" in message
    assert flag in message and "--pull" in message and f"dev.{role}_image" in message
    assert "Traceback" not in result.output
    assert pulls == []
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image)
    events = docker_client.events(
        since=since, until=int(time.time()) + 1, filters={"type": "image"}, decode=True
    )
    assert [e for e in events if e.get("Action") == "pull"] == []
    assert dev_containers(docker_client, project_name(dev_project)) == []
