"""Strict schema validation of rendered objects (kubernetes-validate, jsonschema).

Objects of the core Kubernetes API groups are checked against the JSON
schemas of `target.kubernetes_version` and of the newest version the
library knows, in strict mode (an unknown field is an error, as it is for
`kubectl apply --validate=strict`). Custom resources (KEDA, Strimzi, Istio,
ECK, prometheus-operator, cert-manager, Gateway API) are checked against
their upstream CRD, vendored under manifests/crds/ at the version of the
pinned chart, offline and as strictly (an unknown field is an error, as the
API server's strict field validation makes it; CEL rules, x-kubernetes-validations,
are not evaluated). A custom resource with no vendored CRD is listed as
"not schema-checked" instead of passing silently.

Facts about pairs of objects that no schema sees (one autoscaler per
Deployment, a Kafka-scaled worker's maximum against its partitions, selectors,
ports, quotas) are the whole-set checks of migrate.manifests.lint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

from migrate import install_hint
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
INSTALL_HINT = f"install the validation and Pulumi libraries: {install_hint('k8s')}"


class VendoredCRD(NamedTuple):
    file: str  # under the migrate.manifests package
    source: str  # what it is, for messages


#: (group, kind) -> its CRD, vendored at the version of the chart that installs it
#: (source: a key of manifests.crds.UPSTREAMS; refresh with scripts/refresh-crds)
VENDORED_CRDS: dict[tuple[str, str], VendoredCRD] = {
    ("keda.sh", "ScaledObject"): VendoredCRD("crds/keda/keda.sh_scaledobjects.yaml", "KEDA"),
    **{
        ("kafka.strimzi.io", kind): VendoredCRD(f"crds/strimzi/{file}", "Strimzi")
        for kind, file in (
            ("Kafka", "040-Crd-kafka.yaml"),
            ("KafkaTopic", "043-Crd-kafkatopic.yaml"),
            ("KafkaNodePool", "045-Crd-kafkanodepool.yaml"),
        )
    },
    **{
        (f"{crd.split('.', 1)[1]}", kind): VendoredCRD(f"crds/istio/{crd}.yaml", "Istio")
        for kind, crd in (
            ("AuthorizationPolicy", "authorizationpolicies.security.istio.io"),
            ("DestinationRule", "destinationrules.networking.istio.io"),
            ("PeerAuthentication", "peerauthentications.security.istio.io"),
            ("RequestAuthentication", "requestauthentications.security.istio.io"),
            ("Telemetry", "telemetries.telemetry.istio.io"),
            ("VirtualService", "virtualservices.networking.istio.io"),
        )
    },
    ("elasticsearch.k8s.elastic.co", "Elasticsearch"): VendoredCRD(
        "crds/eck/elasticsearches.elasticsearch.k8s.elastic.co.yaml", "ECK"
    ),
    ("kibana.k8s.elastic.co", "Kibana"): VendoredCRD(
        "crds/eck/kibanas.kibana.k8s.elastic.co.yaml", "ECK"
    ),
    **{
        ("monitoring.coreos.com", kind): VendoredCRD(
            f"crds/prometheus-operator/{file}", "prometheus-operator"
        )
        for kind, file in (
            ("PodMonitor", "crd-podmonitors.yaml"),
            ("PrometheusRule", "crd-prometheusrules.yaml"),
            ("ServiceMonitor", "crd-servicemonitors.yaml"),
        )
    },
    ("cert-manager.io", "Certificate"): VendoredCRD(
        "crds/cert-manager/crd-certificates.yaml", "cert-manager"
    ),
    **{
        ("gateway.networking.k8s.io", kind): VendoredCRD(
            f"crds/gateway-api/gateway.networking.k8s.io_{plural}.yaml", "Gateway API"
        )
        for kind, plural in (("Gateway", "gateways"), ("HTTPRoute", "httproutes"))
    },
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
    """`Strimzi 1.2.0 CRD`: which vendored schema checks the object."""
    from migrate.manifests.crds import UPSTREAMS

    source = VENDORED_CRDS[(manifest.group, manifest.kind)].source
    return f"{source} {UPSTREAMS[source].version} CRD"


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

    from migrate.manifests.crds import UPSTREAMS

    vendored = VENDORED_CRDS[(group, kind)]
    text = files("migrate.manifests").joinpath(vendored.file).read_text(encoding="utf-8")
    crd = yaml.safe_load(text)
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if version not in served:
        return (
            f"{group}/{version} is not a version the vendored {vendored.source} "
            f"{UPSTREAMS[vendored.source].version} CRD serves (it serves "
            f"{', '.join(f'{group}/{v}' for v in sorted(served))}): change the apiVersion"
        )
    schema = _strict(served[version]["schema"]["openAPIV3Schema"])
    # the API server checks apiVersion, kind and metadata itself; many CRDs (Istio's)
    # leave them out of their schema, which strictness would then refuse
    schema.setdefault("properties", {}).update(
        {
            key: value
            for key, value in (
                ("apiVersion", {"type": "string"}),
                ("kind", {"type": "string"}),
                ("metadata", {"type": "object"}),
            )
            if key not in schema["properties"]
        }
    )
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


def validate(
    manifests: Iterable[Manifest], kubernetes_version: str, *, required: bool = True
) -> ValidationReport:
    """Check every core object, and every custom resource whose CRD is vendored; raise
    `ValidationFailed` naming each failure (the set: migrate.manifests.lint).

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
    if failures:
        shown = failures[:20]
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        kinds = f"{len(failures)} schema error(s)"
        raise ValidationFailed(
            f"{kinds} in the rendered manifests:\n  " + "\n  ".join(shown) + more,
            hint="fix the template that renders the object (the project's templates/k8s "
            "overrides the packaged one), then render again",
        )
    return report
