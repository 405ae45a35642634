"""Before Pulumi starts: is its CLI installed, is the cluster reachable?

The Automation API runs the `pulumi` CLI, and pulumi-kubernetes talks to
the cluster of a kube context; when either is missing Pulumi fails deep
inside a subprocess. These checks say so first, in a sentence a person can
act on, with the way out that needs neither (`migrate render`).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from migrate import install_hint
from migrate.errors import UserError

RENDER_INSTEAD = (
    "or use `migrate render --out DIR` and hand the manifests to kubectl (`kubectl apply -f "
    "DIR/phase-N/`) or Argo CD"
)
INSTALL_PULUMI = (
    "install the Pulumi CLI (https://www.pulumi.com/docs/install/) and put `pulumi` on PATH"
)


class InfraUnavailable(UserError):
    """Pulumi or the cluster cannot be used from here."""


def _installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (pulumi takes 0.3 s)."""
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ValueError:  # in sys.modules with no __spec__ (a stand-in): it is there
        return True


def require_libraries() -> None:
    if not (_installed("pulumi") and _installed("pulumi_kubernetes")):
        raise InfraUnavailable(
            "provisioning needs the pulumi and pulumi-kubernetes libraries, which are not "
            "installed",
            hint=install_hint("k8s"),
        )


def pulumi_cli() -> str | None:
    return shutil.which("pulumi")


def require_cli() -> str:
    command = pulumi_cli()
    if command is None:
        raise InfraUnavailable(
            "the Pulumi CLI (`pulumi`) is not installed or not on PATH; migrate provisions "
            "through Pulumi's Automation API, which runs that CLI",
            hint=f"{INSTALL_PULUMI}; {RENDER_INSTEAD}",
        )
    return command


def kubeconfig_files() -> list[Path]:
    value = os.environ.get("KUBECONFIG")
    if value:
        return [Path(p).expanduser() for p in value.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _load_kubeconfig() -> dict[str, Any]:
    """The merged kubeconfig (first file wins, as kubectl merges)."""
    import yaml

    merged: dict[str, Any] = {"contexts": {}, "clusters": {}, "current-context": None}
    for path in kubeconfig_files():
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InfraUnavailable(
                f"the kubeconfig {path} cannot be read: {exc}", hint="fix or replace it"
            ) from None
        merged["current-context"] = merged["current-context"] or data.get("current-context")
        for section in ("contexts", "clusters"):
            for entry in data.get(section) or []:
                merged[section].setdefault(entry.get("name"), entry.get(section[:-1], {}))
    return merged


def cluster_server(kube_context: str | None) -> tuple[str, str]:
    """(context, API server URL) of `kube_context`, or of the current context."""
    config = _load_kubeconfig()
    files = ", ".join(str(p) for p in kubeconfig_files())
    name = kube_context or config["current-context"]
    if not name:
        raise InfraUnavailable(
            f"no Kubernetes cluster is configured: no kube context in {files}",
            hint="set target.kube_context in migrate.yaml (or KUBECONFIG) to the cluster's "
            f"context; {RENDER_INSTEAD}",
        )
    context = config["contexts"].get(name)
    if context is None:
        known = ", ".join(sorted(str(c) for c in config["contexts"])) or "none"
        raise InfraUnavailable(
            f"the kube context {name!r} does not exist in {files} (contexts: {known})",
            hint=f"fix target.kube_context in migrate.yaml; {RENDER_INSTEAD}",
        )
    cluster = config["clusters"].get(context.get("cluster"), {})
    server = cluster.get("server")
    if not server:
        raise InfraUnavailable(
            f"the kube context {name!r} names no cluster server in {files}",
            hint=f"fix the kubeconfig; {RENDER_INSTEAD}",
        )
    return name, str(server)


def require_cluster(kube_context: str | None, timeout: float = 3.0) -> str:
    """Connect to the API server of the context (TCP); return the context's name."""
    name, server = cluster_server(kube_context)
    url = urlsplit(server)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            pass
    except OSError as exc:
        raise InfraUnavailable(
            f"the cluster of kube context {name!r} ({server}) is not reachable: "
            f"{exc.strerror or exc}",
            hint="check it with `kubectl --context "
            f"{name} cluster-info`, or set target.kube_context in migrate.yaml to a "
            f"reachable cluster; {RENDER_INSTEAD}",
        ) from None
    return name


def readiness(kube_context: str | None) -> str | None:
    """None when Pulumi can run against the cluster, else why not (for `plan`)."""
    try:
        require_libraries()
        require_cli()
        require_cluster(kube_context)
    except InfraUnavailable as exc:
        return exc.message.split(";")[0]
    return None
