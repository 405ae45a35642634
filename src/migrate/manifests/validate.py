"""Strict schema validation of rendered objects (kubernetes-validate, jsonschema).

Objects of the core Kubernetes API groups are checked against the JSON
schemas of `target.kubernetes_version` and of the newest version the
library knows, in strict mode (an unknown field is an error, as it is for
`kubectl apply --validate=strict`). Custom resources whose CRD is vendored
under manifests/crds/ (KEDA's ScaledObject, at the version of the pinned
chart) are checked against that CRD's schema, offline and as strictly (an
unknown field is an error, as the API server's strict field validation
makes it). The other custom resources (Istio, Strimzi, ECK, the Prometheus
operator) are listed as "not schema-checked" instead of passing silently.

Then the set: facts about pairs of objects that no schema sees. A
Deployment has one autoscaler (an HPA or a ScaledObject, never both), and a
Kafka-scaled worker gets no more replicas than the partitions it reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

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


class VendoredCRD(NamedTuple):
    file: str  # under the migrate.manifests package
    source: str  # what it is, for messages


#: (group, kind) -> its CRD, vendored at the version of the chart that installs it
#: (manifests/helm.py; refresh with scripts/refresh-crds)
VENDORED_CRDS: dict[tuple[str, str], VendoredCRD] = {
    ("keda.sh", "ScaledObject"): VendoredCRD("crds/keda/keda.sh_scaledobjects.yaml", "KEDA"),
}


class ValidationFailed(UserError):
    """A rendered object does not match its Kubernetes schema."""


@dataclass
class ValidationReport:
    versions: list[str]
    checked: list[Manifest] = field(default_factory=list)  # core objects
    crd_checked: list[Manifest] = field(default_factory=list)  # against a vendored CRD
    not_checked: list[Manifest] = field(default_factory=list)
    skipped: str | None = None  # why nothing was checked (the library is missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "checked": len(self.checked),
            "crd_checked": [
                {
                    "phase": m.phase,
                    "file": m.filename,
                    "object": m.ref,
                    "apiVersion": m.api_version,
                    "schema": crd_source(m),
                }
                for m in self.crd_checked
            ],
            "not_schema_checked": [
                {"phase": m.phase, "file": m.filename, "object": m.ref, "apiVersion": m.api_version}
                for m in self.not_checked
            ],
        }


def is_core(manifest: Manifest) -> bool:
    return manifest.group in CORE_GROUPS


def has_vendored_crd(manifest: Manifest) -> bool:
    return (manifest.group, manifest.kind) in VENDORED_CRDS


def crd_source(manifest: Manifest) -> str:
    """`KEDA 2.17.3 CRD`: which vendored schema checks the object."""
    from migrate.manifests.helm import KEDA_APP_VERSION

    vendored = VENDORED_CRDS[(manifest.group, manifest.kind)]
    version = KEDA_APP_VERSION if vendored.source == "KEDA" else ""
    return f"{vendored.source} {version} CRD".replace("  ", " ")


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


def _strict(schema: Any) -> Any:
    """A copy of a CRD's structural schema in which objects with declared properties
    refuse any other (the API server prunes or, with strict field validation, rejects
    unknown fields; x-kubernetes-preserve-unknown-fields keeps an object open)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@cache
def _crd_validator(group: str, kind: str, version: str) -> Any:
    """A jsonschema validator of the vendored CRD's `version`, or a str saying why none."""
    from importlib.resources import files

    import jsonschema
    import yaml

    vendored = VENDORED_CRDS[(group, kind)]
    text = files("migrate.manifests").joinpath(vendored.file).read_text(encoding="utf-8")
    crd = yaml.safe_load(text)
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if version not in served:
        return (
            f"{group}/{version} is not a version the vendored {vendored.source} CRD serves "
            f"(it serves {', '.join(f'{group}/{v}' for v in sorted(served))})"
        )
    schema = _strict(served[version]["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def _crd_errors(manifest: Manifest) -> list[str]:
    validator = _crd_validator(manifest.group, manifest.kind, manifest.api_version.split("/")[-1])
    if isinstance(validator, str):
        return [validator]
    errors = sorted(validator.iter_errors(manifest.obj), key=lambda e: list(e.absolute_path))
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
        for error in errors
    ]


def _autoscaling_errors(manifests: list[Manifest]) -> list[str]:
    """What the set must hold: one autoscaler per Deployment; for a ScaledObject with
    kafka triggers, when KafkaTopics are in the set, a KafkaTopic for each topic it
    reads and maxReplicaCount <= their partitions (one consumer per partition)."""
    errors: list[str] = []
    owners: dict[tuple[str | None, str], Manifest] = {}
    partitions: dict[tuple[str | None, str], int] = {}
    for m in manifests:
        if m.kind == "KafkaTopic" and m.group == "kafka.strimzi.io":
            spec = m.obj.get("spec", {})
            topic = str(spec.get("topicName") or m.name)
            partitions[(m.namespace, topic)] = int(spec.get("partitions", 1))
    for m in manifests:
        if m.kind not in ("HorizontalPodAutoscaler", "ScaledObject"):
            continue
        spec = m.obj.get("spec", {})
        target = spec.get("scaleTargetRef", {})
        key = (m.namespace, str(target.get("name")))
        if target.get("kind", "Deployment") == "Deployment":
            other = owners.setdefault(key, m)
            if other is not m:
                errors.append(
                    f"phase-{m.phase}/{m.filename}: {m.ref} and {other.ref} both scale "
                    f"Deployment {key[1]}; a Deployment takes one autoscaler"
                )
        if m.kind != "ScaledObject":
            continue
        topics = [
            str(t.get("metadata", {}).get("topic"))
            for t in spec.get("triggers", [])
            if t.get("type") == "kafka"
        ]
        known = [partitions[(m.namespace, t)] for t in topics if (m.namespace, t) in partitions]
        missing = [t for t in topics if (m.namespace, t) not in partitions]
        if partitions and missing:
            errors.append(
                f"phase-{m.phase}/{m.filename}: {m.ref}: no KafkaTopic creates "
                f"{', '.join(missing)} (the cluster does not create topics on use); add the "
                "type to the kafka task's `topics`, or leave it `from-plugin-events`"
            )
        elif topics and not missing:
            most = spec.get("maxReplicaCount", 100)  # KEDA's default
            if isinstance(most, int) and most > sum(known):
                errors.append(
                    f"phase-{m.phase}/{m.filename}: {m.ref}: maxReplicaCount {most} exceeds the "
                    f"{sum(known)} partition(s) of {', '.join(topics)}: the extra consumers "
                    "would sit idle"
                )
    return errors


def validate(
    manifests: Iterable[Manifest], kubernetes_version: str, *, required: bool = True
) -> ValidationReport:
    """Check every core object, and every custom resource whose CRD is vendored, then
    the set (`_autoscaling_errors`); raise `ValidationFailed` naming each failure.

    Without the library, `required=False` (what `plan` asks for) checks nothing and
    says so in `skipped` instead of failing.
    """
    manifests = list(manifests)
    if not required:
        try:
            _library()
        except UserError:
            return ValidationReport(versions=[], not_checked=manifests, skipped=INSTALL_HINT)
    report = ValidationReport(versions=versions_for(kubernetes_version))
    failures: list[str] = []
    for manifest in manifests:
        if has_vendored_crd(manifest):
            report.crd_checked.append(manifest)
            failures.extend(
                f"phase-{manifest.phase}/{manifest.filename}: {manifest.ref} "
                f"({crd_source(manifest)}): {error}"
                for error in _crd_errors(manifest)
            )
            continue
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
    schema_errors = len(failures)
    failures.extend(_autoscaling_errors(manifests))
    if failures:
        shown = failures[:20]
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        kinds = " and ".join(
            f"{n} {what}"
            for n, what in (
                (schema_errors, "schema error(s)"),
                (len(failures) - schema_errors, "autoscaling error(s)"),
            )
            if n
        )
        raise ValidationFailed(
            f"{kinds} in the rendered manifests:\n  " + "\n  ".join(shown) + more,
            hint="fix the template that renders the object (the project's templates/k8s "
            "overrides the packaged one), then render again",
        )
    return report
