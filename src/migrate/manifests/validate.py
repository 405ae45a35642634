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

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from migrate import install_hint
from migrate.errors import UserError
from migrate.manifests.model import Manifest

if TYPE_CHECKING:
    from migrate.state.cache import ResultCache

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


def _installed() -> bool:
    """Whether kubernetes-validate is there, without importing it (a plan whose results
    are all cached never imports it, nor jsonschema)."""
    return _schema_root() is not None


def versions_for(kubernetes_version: str) -> list[str]:
    """The target version and the newest the library knows (once when they agree)."""
    if not _installed():
        _library()  # raises, saying how to install it
    from packaging.version import Version

    newest = ".".join(_schema_versions()[-1].split(".")[:2])
    if Version(kubernetes_version) > Version(newest):
        raise UserError(
            f"target.kubernetes_version {kubernetes_version} is newer than any schema the "
            f"installed kubernetes-validate knows (newest: {newest})",
            hint="upgrade it: pip install -U kubernetes-validate; or lower "
            "target.kubernetes_version in migrate.yaml",
        )
    return sorted({kubernetes_version, newest}, key=Version)


# --- results cache: what a key says -----------------------------------------------------


@cache
def _logic() -> str:
    """The hash of this module: a change to how objects are checked voids cached results."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


@cache
def _distribution(name: str) -> str:
    """The installed version of a distribution, without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


_JSON_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    """Whether `value` is made of JSON types only (str keys), so that its JSON text
    says all there is to it (an int key would read as the str key)."""
    pending = [value]  # a loop, not a recursion: it walks every value of every object
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return False
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif not isinstance(item, _JSON_SCALARS):
            return False
    return True


def _key(identity: str, obj: dict[str, Any], text: str | None = None) -> str | None:
    """sha256 of the schema's identity and the object's canonical JSON (`text`, when the
    caller made it already: `_canonical`), or None when the object holds something JSON
    cannot say exactly (then it is not cached)."""
    if text is None:
        text = _canonical(obj)
    if text is None:
        return None
    return hashlib.sha256(f"{identity}\0{text}".encode()).hexdigest()


def _canonical(obj: dict[str, Any]) -> str | None:
    """The object's canonical JSON, or None when JSON cannot say it exactly."""
    if not _plain(obj):
        return None
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _cached(results: ResultCache, key: str | None, compute: Callable[[], list[str]]) -> list[str]:
    """The errors of one check: from the cache when it holds a well-formed answer."""
    if key is not None:
        found = results.get(key)
        if isinstance(found, list) and all(isinstance(e, str) for e in found):
            return found
    errors = compute()
    if key is not None:
        results.put(key, errors)
    return errors


# --- core objects: the strict schemas of kubernetes-validate ----------------------------


def _schema_root() -> Path | None:
    """kubernetes-validate's schema directory, found without importing the library."""
    from importlib.util import find_spec

    try:
        spec = find_spec("kubernetes_validate")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@cache
def _schema_versions() -> tuple[str, ...]:
    """The Kubernetes versions kubernetes-validate has schemas of, oldest first (what its
    all_versions() answers, read from the directory so a cache hit imports nothing)."""
    from packaging.version import InvalidVersion, Version

    root = _schema_root()
    if root is None or not root.is_dir():
        return tuple(_library().utils.all_versions())
    pattern = re.compile(r"^v([^-]*).*")
    found = {pattern.sub(r"\1", p.name) for p in root.iterdir() if pattern.match(p.name)}
    try:
        return tuple(sorted(found, key=Version))
    except InvalidVersion:
        return tuple(_library().utils.all_versions())


def _major_minor(version: str) -> str:
    return re.sub(r"^(\d+\.\d+).*", r"\1", version)


def _schema_dir(version: str) -> str:
    """The strict schema directory kubernetes-validate's validate() reads for `version`
    (the newest it has that is not newer; it compares as strings, and so does this)."""
    wanted = _major_minor(version)
    found = [v for v in _schema_versions() if _major_minor(v) <= wanted][-1]
    return f"v{found}-local-strict"


@cache
def _core_identity(version: str) -> str:
    return (
        f"core|kubernetes={version}|{_schema_dir(version)}"
        f"|kubernetes-validate={_distribution('kubernetes-validate')}"
        f"|jsonschema={_distribution('jsonschema')}|referencing={_distribution('referencing')}"
        f"|logic={_logic()}"
    )


@cache
def _definitions(schema_dir: str, version: str) -> Any:
    """The shared definitions (1.8 MB of JSON) of one schema directory, read once."""
    from referencing import Resource

    path = f"kubernetes-json-schema/{schema_dir}/_definitions.json"
    return Resource.from_contents(_library().utils.schema_contents(path, version))


@cache
def _core_validator(api_version: str, kind: str, version: str) -> Any:
    """The validator kubernetes-validate's validate(strict=True) builds for one kind, built
    once (the library rereads every schema for every object), or a str: why there is none."""
    import jsonschema
    from referencing import Registry, Resource

    library = _library()
    schema_dir = _schema_dir(version)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = library.utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{api}.json", version
        )
    except FileNotFoundError:
        missing = library.SchemaNotFoundError(
            version=_major_minor(version), kind=kind, api_version=api_version
        )
        return str(missing.message)
    registry = _definitions(schema_dir, version) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _text(manifest: Manifest) -> str:
    """The object's YAML text: `manifest.text` when it was made already, else the same
    document dumped by libyaml's emitter (the pure-Python one takes 5 ms an object);
    either reads back to the same data."""
    import yaml

    text = manifest.__dict__.get("text")
    if isinstance(text, str) or not hasattr(yaml, "CSafeDumper"):
        return manifest.text
    return str(
        yaml.dump(
            manifest.obj,
            Dumper=yaml.CSafeDumper,
            sort_keys=True,
            default_flow_style=False,
            width=100,
        )
    )


def _read_back(manifest: Manifest) -> Any:
    """The object as its YAML text reads back."""
    import yaml

    return yaml.load(_text(manifest), Loader=_yaml_loader())


def _core_errors(
    manifest: Manifest, version: str, read_back: Callable[[], Any] | None = None
) -> list[str]:
    """The schema error of one object (as its YAML text reads back) for one version;
    `read_back` gives that data (read once for all the versions), else it is read here."""
    import jsonschema

    data = read_back() if read_back is not None else _read_back(manifest)
    validator = _core_validator(str(data["apiVersion"]), str(data["kind"]), version)
    if isinstance(validator, str):
        return [validator]
    try:
        validator.validate(data)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        return [f"{where}: {exc.message}"]
    return []


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
def _crd_identity(group: str, kind: str, version: str) -> str:
    from importlib.resources import files

    from migrate.manifests.crds import UPSTREAMS

    vendored = VENDORED_CRDS[(group, kind)]
    data = files("migrate.manifests").joinpath(vendored.file).read_bytes()
    return (
        f"crd|{vendored.file}|sha256={hashlib.sha256(data).hexdigest()}|{group}/{version}"
        f"|{vendored.source} {UPSTREAMS[vendored.source].version}"
        f"|jsonschema={_distribution('jsonschema')}|logic={_logic()}"
    )


@cache
def _crd_validator(group: str, kind: str, version: str) -> Any:
    """A jsonschema validator of the vendored CRD's `version`, or a str saying why none."""
    import jsonschema

    from migrate.state.cache import default_dir, load_value, save_value

    identity = _crd_identity(group, kind, version)
    directory = default_dir()
    schema = load_value(directory, identity)  # the YAML of the CRDs takes 0.5 s to read
    if not isinstance(schema, str | dict):
        schema = _crd_schema(group, kind, version)
        if _plain(schema):  # JSON says it exactly (a date or an int key would change)
            save_value(directory, identity, schema)
    if isinstance(schema, str):
        return schema
    return jsonschema.Draft7Validator(schema)


def _crd_schema(group: str, kind: str, version: str) -> dict[str, Any] | str:
    """The strict schema of the vendored CRD's `version`, or a str saying why none."""
    from migrate.manifests.crds import UPSTREAMS

    vendored = VENDORED_CRDS[(group, kind)]
    crd = _crd_document(vendored.file)
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if version not in served:
        return (
            f"{group}/{version} is not a version the vendored {vendored.source} "
            f"{UPSTREAMS[vendored.source].version} CRD serves (it serves "
            f"{', '.join(f'{group}/{v}' for v in sorted(served))}): change the apiVersion"
        )
    schema: dict[str, Any] = _strict(served[version]["schema"]["openAPIV3Schema"])
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
    return schema


def _crd_document(file: str) -> Any:
    """The vendored CRD `file` (under the migrate.manifests package) as its YAML reads: from
    the JSON form next to it when that was derived from exactly these YAML bytes (a JSON
    read takes 1/20 of the YAML's), else from the YAML (manifests.crds)."""
    from importlib.resources import files

    from migrate.manifests.crds import from_json_form, json_name, read_yaml

    here = files("migrate.manifests")
    data = here.joinpath(file).read_bytes()
    try:
        text = here.joinpath(json_name(file)).read_bytes()
    except OSError:
        text = None
    document = from_json_form(text, data) if text is not None else None
    return document if document is not None else read_yaml(data)


def _crd_errors(manifest: Manifest) -> list[str]:
    validator = _crd_validator(manifest.group, manifest.kind, _served_version(manifest))
    if isinstance(validator, str):
        return [validator]
    errors = sorted(validator.iter_errors(manifest.obj), key=lambda e: list(e.absolute_path))
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
        for error in errors
    ]


def _once(compute: Callable[[], Any]) -> Callable[[], Any]:
    """`compute`, called at most once: later calls answer the first result."""
    found: list[Any] = []

    def once() -> Any:
        if not found:
            found.append(compute())
        return found[0]

    return once


def _served_version(manifest: Manifest) -> str:
    return manifest.api_version.split("/")[-1]


def validate(
    manifests: Iterable[Manifest],
    kubernetes_version: str,
    *,
    required: bool = True,
    cache: ResultCache | None = None,
) -> ValidationReport:
    """Check every core object, and every custom resource whose CRD is vendored; raise
    `ValidationFailed` naming each failure (the set: migrate.manifests.lint).

    Without the library, `required=False` (what `plan` asks for) checks nothing and
    says so in `skipped` instead of failing.

    Each answer is kept in `cache` (default: the file in the user's cache directory,
    migrate.state.cache.default_dir()) under the sha256 of the object's content and of the
    schema's identity: the Kubernetes version, the kubernetes-validate, jsonschema and
    referencing versions and this module's code for core objects; the vendored CRD
    file's sha256 for custom resources. A missing, stale or corrupt cache only means
    the objects are checked again.
    """
    from migrate.state.cache import ResultCache, default_dir

    manifests = list(manifests)
    if not required and not _installed():
        return ValidationReport(versions=[], not_checked=manifests, skipped=INSTALL_HINT)
    report = ValidationReport(versions=versions_for(kubernetes_version))
    results = cache if cache is not None else ResultCache(default_dir())
    failures: list[str] = []
    for manifest in manifests:
        if has_vendored_crd(manifest):
            report.crd_checked.append(manifest)
            identity = _crd_identity(manifest.group, manifest.kind, _served_version(manifest))
            errors = _cached(results, _key(identity, manifest.obj), partial(_crd_errors, manifest))
            failures.extend(
                f"phase-{manifest.phase}/{manifest.filename}: {manifest.ref} "
                f"({crd_source(manifest)}): {error}"
                for error in errors
            )
            continue
        if not is_core(manifest):
            report.not_checked.append(manifest)
            continue
        report.checked.append(manifest)
        text = _canonical(manifest.obj)  # hashed with each version's identity
        # the YAML text read back, once for every version: for an object of JSON types that
        # is its canonical JSON read back (the same values, keys in the same sorted order)
        read_back = _once(
            partial(json.loads, text) if text is not None else partial(_read_back, manifest)
        )
        for version in report.versions:
            errors = _cached(
                results,
                _key(_core_identity(version), manifest.obj, text) if text is not None else None,
                partial(_core_errors, manifest, version, read_back),
            )
            failures.extend(
                f"phase-{manifest.phase}/{manifest.filename}: {manifest.ref} "
                f"(Kubernetes {version}): {error}"
                for error in errors
            )
    results.save()
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
