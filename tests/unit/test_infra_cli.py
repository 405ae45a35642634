"""`migrate infra`: the messages when Pulumi or the cluster is missing, and the real thing.

The tests marked `pulumi_cli` run preview/up/destroy against a real cluster;
they need the `pulumi` CLI and MIGRATE_TEST_KUBECONTEXT and are skipped
without them (this machine has neither).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from migrate.cli.app import app
from migrate.infra import cluster


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("verb", ["preview", "up", "destroy"])
def test_missing_pulumi_cli(project: Path, monkeypatch: pytest.MonkeyPatch, verb: str) -> None:
    monkeypatch.setenv("PATH", str(project))  # nowhere with a `pulumi`
    yes = [] if verb == "preview" else ["--yes"]
    result = run("-C", str(project), "infra", verb, "--phase", "1", *yes)
    assert result.exit_code == 1
    assert "the Pulumi CLI (`pulumi`) is not installed or not on PATH" in result.stderr
    assert "install the Pulumi CLI" in result.stderr
    assert "migrate render --out DIR" in result.stderr and "Argo CD" in result.stderr
    assert "Traceback" not in result.output


def set_kube_context(project: Path, context: str) -> None:
    config = project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data["target"]["kube_context"] = context
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def _with_fake_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "pulumi_cli", lambda: str(tmp_path / "pulumi"))


def test_no_kube_context(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_fake_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    result = run("-C", str(project), "infra", "preview", "--phase", "1")
    assert result.exit_code == 1
    assert "no Kubernetes cluster is configured" in result.stderr
    assert "target.kube_context" in result.stderr and "migrate render" in result.stderr


def _kubeconfig(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
        "contexts:\n- name: dev\n  context: {cluster: dev}\n"
        f"clusters:\n- name: dev\n  cluster: {{server: 'https://127.0.0.1:{port}'}}\n"
    )
    return path


def test_unknown_kube_context(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_fake_cli(tmp_path, monkeypatch)
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, 1)))
    set_kube_context(project, "prod")
    result = run("-C", str(project), "infra", "preview", "--phase", "1")
    assert result.exit_code == 1
    assert "the kube context 'prod' does not exist" in result.stderr and "dev" in result.stderr


def test_unreachable_cluster(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_fake_cli(tmp_path, monkeypatch)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, port)))
    result = run("-C", str(project), "infra", "up", "--phase", "1", "--yes")
    assert result.exit_code == 1
    assert f"the cluster of kube context 'dev' (https://127.0.0.1:{port}) is not reachable" in (
        result.stderr
    )
    assert "kubectl --context dev cluster-info" in result.stderr
    assert "Traceback" not in result.output


def test_up_needs_a_phase(project: Path) -> None:
    result = run("-C", str(project), "infra", "up", "--yes")
    assert result.exit_code == 1 and "needs the phase: --phase N" in result.stderr


@pytest.mark.pulumi_cli
def test_preview_up_destroy_against_a_real_cluster(project: Path) -> None:
    context = os.environ.get("MIGRATE_TEST_KUBECONTEXT")
    if shutil.which("pulumi") is None or not context:
        pytest.skip("needs the pulumi CLI and MIGRATE_TEST_KUBECONTEXT (a disposable cluster)")
    set_kube_context(project, context)
    for verb in ("preview", "up", "preview", "destroy"):
        yes = [] if verb == "preview" else ["--yes"]
        result = run("-C", str(project), "infra", verb, "--phase", "1", *yes)
        assert result.exit_code == 0, result.output
        assert "stack project-phase1" in result.stdout
