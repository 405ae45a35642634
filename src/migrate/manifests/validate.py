"""Strict schema validation of rendered objects (kubernetes-validate).

Objects of the core Kubernetes API groups are checked against the JSON
schemas of `target.kubernetes_version` and of the newest version the
library knows, in strict mode (an unknown field is an error, as it is for
`kubectl apply --validate=strict`). Custom resources (Istio, Strimzi, ECK,
the Prometheus operator) have no schema there: they are listed as "not
schema-checked" instead of passing silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from migrate.errors import UserError
from migrate.manifests.model import Manifest

#: API groups whose schemas ship with Kubernetes ("" is the core group, apiVersion v1)
CORE_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apps",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)
INSTALL_HINT = "install the validation and Pulumi libraries: pip install 'migrate[k8s]'"


class ValidationFailed(UserError):
    """A rendered object does not match its Kubernetes schema."""


@dataclass
class ValidationReport:
    versions: list[str]
    checked: list[Manifest] = field(default_factory=list)
    not_checked: list[Manifest] = field(default_factory=list)
    skipped: str | None = None  # why nothing was checked (the library is missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "checked": len(self.checked),
            "not_schema_checked": [
                {"phase": m.phase, "file": m.filename, "object": m.ref, "apiVersion": m.api_version}
                for m in self.not_checked
            ],
        }


def is_core(manifest: Manifest) -> bool:
    return manifest.group in CORE_GROUPS


def _library() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        raise UserError(
            "strict validation of the manifests needs the kubernetes-validate library, which "
            "is not installed",
            hint=INSTALL_HINT,
        ) from None
    return kubernetes_validate


def versions_for(kubernetes_version: str) -> list[str]:
    """The target version and the newest the library knows (once when they agree)."""
    library = _library()
    from packaging.version import Version

    newest = ".".join(library.latest_version().split(".")[:2])
    if Version(kubernetes_version) > Version(newest):
        raise UserError(
            f"target.kubernetes_version {kubernetes_version} is newer than any schema the "
            f"installed kubernetes-validate knows (newest: {newest})",
            hint="upgrade it: pip install -U kubernetes-validate; or lower "
            "target.kubernetes_version in migrate.yaml",
        )
    return sorted({kubernetes_version, newest}, key=Version)


@cache
def _validate_cached(text: str, version: str) -> str | None:
    """The schema error of one object (its sorted YAML text) for one version, or None."""
    import yaml

    library = _library()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        library.validate(yaml.load(text, Loader=loader), version, strict=True)
    except library.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        return f"{where}: {exc.message}"
    except library.SchemaNotFoundError as exc:
        return str(exc.message)
    return None


def validate(
    manifests: Iterable[Manifest], kubernetes_version: str, *, required: bool = True
) -> ValidationReport:
    """Check every core object; raise `ValidationFailed` naming each failure.

    Without the library, `required=False` (what `plan` asks for) checks nothing and
    says so in `skipped` instead of failing.
    """
    if not required:
        try:
            _library()
        except UserError:
            return ValidationReport(versions=[], not_checked=list(manifests), skipped=INSTALL_HINT)
    report = ValidationReport(versions=versions_for(kubernetes_version))
    failures: list[str] = []
    for manifest in manifests:
        if not is_core(manifest):
            report.not_checked.append(manifest)
            continue
        report.checked.append(manifest)
        for version in report.versions:
            error = _validate_cached(manifest.text, version)
            if error:
                failures.append(
                    f"phase-{manifest.phase}/{manifest.filename}: {manifest.ref} "
                    f"(Kubernetes {version}): {error}"
                )
    if failures:
        shown = failures[:20]
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise ValidationFailed(
            f"{len(failures)} schema error(s) in the rendered manifests:\n  "
            + "\n  ".join(shown)
            + more,
            hint="fix the template that renders the object (the project's templates/k8s "
            "overrides the packaged one), then render again",
        )
    return report
