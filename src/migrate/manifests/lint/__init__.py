"""Whole-set checks of the rendered manifests, the way kube-linter and Polaris read a
manifest directory: facts about pairs of objects (a selector and the pods it should
match, a quota and the pods it must hold, an mTLS mode and the callers that have no
sidecar) that no schema of a single object can see.

`check(phases)` builds one `SetModel` of every rendered object and Helm release and
runs every rule on it. A rule is a function `(SetModel) -> Iterable[Finding]`,
registered with `@rule(...)` in one of the modules of this package named after what
it reads (selectors, scaling, quota, podsecurity, mesh, network, runtime). A finding
names the object, the file it is written to (`phase-N/<file>`), what is wrong, how to
fix it and, where a rule encodes an operator's behaviour, the upstream source.

`plan` and `render` run the checks after schema validation; a finding of severity
`error` fails them unless `--minimum-failure-severity none` (tflint's flag) says so,
and `--skip-check RULE` (checkov's and kube-linter's convention) leaves a rule out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from migrate.errors import UserError

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.manifests.model import HelmRelease, Manifest, PhaseManifests

Severity = Literal["error", "warning"]
SEVERITIES: tuple[str, ...] = ("error", "warning", "none")

#: kinds whose spec.template is a pod template
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the set, as a person reads it."""

    rule: str  # the rule's id, e.g. `selector-matches-pods`
    severity: Severity
    object: str  # `Kind namespace/name` (Manifest.ref) or `HelmRelease name`
    file: str  # where it is written: `phase-N/<file>` (render's layout)
    message: str  # what is wrong, with the facts that show it
    fix: str  # what to do
    source: str = ""  # the upstream document or code the rule follows, when it has one

    def to_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "object": self.object,
            "file": self.file,
            "message": self.message,
            "fix": self.fix,
            "source": self.source,
        }

    def line(self) -> str:
        cite = f" [{self.source}]" if self.source else ""
        where = f"{self.severity} [{self.rule}]: {self.file}: {self.object}"
        return f"{where}: {self.message} (fix: {self.fix}){cite}"


@dataclass(frozen=True)
class Workload:
    """A rendered object that makes pods, with the pods' template and replica range."""

    manifest: Manifest
    pod: dict[str, Any]  # the pod spec (spec.template.spec)
    labels: dict[str, str]  # the pod template's labels
    annotations: dict[str, str]  # the pod template's annotations
    min_replicas: int  # spec.replicas (1 when absent), or the autoscaler's minimum
    max_replicas: int  # the autoscaler's maximum when one scales it, else min_replicas


@dataclass
class SetModel:
    """Every rendered object and Helm release of the phases checked, indexed."""

    manifests: list[Manifest]
    releases: list[HelmRelease] = field(default_factory=list)

    @classmethod
    def of(cls, phases: Iterable[PhaseManifests]) -> SetModel:
        phases = list(phases)
        return cls(
            manifests=[m for p in phases for m in p.manifests],
            releases=[r for p in phases for r in p.releases],
        )

    @staticmethod
    def where(manifest: Manifest) -> str:
        return f"phase-{manifest.phase}/{manifest.filename}"

    @staticmethod
    def release_where(release: HelmRelease) -> str:
        return f"phase-{release.phase}/{release.filename}"

    def of_kind(self, *kinds: str) -> list[Manifest]:
        if len(kinds) == 1:  # the rules ask this thousands of times: answered from an index
            return list(self._by_kind.get(kinds[0], ()))
        return [m for m in self.manifests if m.kind in kinds]

    @cached_property
    def _by_kind(self) -> dict[str, list[Manifest]]:
        index: dict[str, list[Manifest]] = {}
        for m in self.manifests:
            index.setdefault(m.kind, []).append(m)
        return index

    def find(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        for m in self.manifests:
            if m.kind == kind and m.name == name and m.namespace == namespace:
                return m
        return None

    def release(self, chart: str) -> HelmRelease | None:
        return next((r for r in self.releases if r.chart == chart), None)

    @cached_property
    def workloads(self) -> list[Workload]:
        scalers: dict[tuple[str | None, str, str], tuple[int, int]] = {}
        for m in self.of_kind("HorizontalPodAutoscaler", "ScaledObject"):
            spec = m.obj.get("spec", {})
            target = spec.get("scaleTargetRef", {})
            key = (m.namespace, str(target.get("kind", "Deployment")), str(target.get("name")))
            if m.kind == "HorizontalPodAutoscaler":
                low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
            else:  # KEDA's defaults
                low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
            scalers[key] = (int(low), int(high))
        result = []
        for m in self.of_kind(*WORKLOAD_KINDS):
            template = m.obj.get("spec", {}).get("template", {})
            metadata = template.get("metadata", {})
            replicas = int(m.obj.get("spec", {}).get("replicas", 1))
            low, high = scalers.get((m.namespace, m.kind, m.name), (replicas, replicas))
            result.append(
                Workload(
                    manifest=m,
                    pod=template.get("spec", {}),
                    labels=dict(metadata.get("labels") or {}),
                    annotations=dict(metadata.get("annotations") or {}),
                    min_replicas=low,
                    max_replicas=max(high, low),
                )
            )
        return result

    def pods(self, namespace: str | None, selector: dict[str, Any] | None) -> list[Workload]:
        """The rendered workloads of `namespace` whose pods `selector` matches."""
        return [
            w
            for w in self.workloads
            if w.manifest.namespace == namespace and selects(selector, w.labels)
        ]

    def outside(self, namespace: str | None) -> bool:
        """Whether `namespace` holds what a Helm release makes (charts' pods and Services
        are not in the rendered set, so facts about them cannot be checked here)."""
        return any(r.namespace == namespace for r in self.releases)

    def namespace_labels(self, namespace: str | None) -> dict[str, str]:
        found = self.find("Namespace", None, namespace or "")
        return dict(found.obj.get("metadata", {}).get("labels") or {}) if found else {}


Rule = Callable[[SetModel], Iterable[Finding]]


@dataclass(frozen=True)
class RuleInfo:
    id: str
    summary: str
    check: Rule


RULES: dict[str, RuleInfo] = {}


def error_at(rule_id: str, manifest: Manifest, message: str, fix: str, source: str = "") -> Finding:
    """An error finding about `manifest`, placed where render writes it."""
    return Finding(
        rule=rule_id,
        severity="error",
        object=manifest.ref,
        file=SetModel.where(manifest),
        message=message,
        fix=fix,
        source=source,
    )


def rule(rule_id: str, summary: str) -> Callable[[Rule], Rule]:
    """Register a rule under `rule_id` (kebab-case, stable: users skip rules by it)."""

    def register(function: Rule) -> Rule:
        if rule_id in RULES:
            raise RuntimeError(f"rule {rule_id} is registered twice")
        RULES[rule_id] = RuleInfo(rule_id, summary, function)
        return function

    return register


def _load_rules() -> None:
    # the rule modules register themselves on import; one list, in reading order
    import importlib

    for module in (
        "selectors",
        "scaling",
        "quota",
        "podsecurity",
        "mesh",
        "network",
        "runtime",
        "wiring",
        "rollout",
    ):
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise


@dataclass
class LintReport:
    findings: list[Finding]
    rules: list[str]  # the rules that ran
    skipped: list[str]  # the rules left out by --skip-check

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def fails(self, minimum: str = "error") -> bool:
        """Whether the findings fail the run at `--minimum-failure-severity minimum`."""
        if minimum not in SEVERITIES:
            raise UserError(
                f"--minimum-failure-severity {minimum}: not one of {', '.join(SEVERITIES)}"
            )
        if minimum == "none":
            return False
        if minimum == "warning":
            return bool(self.findings)
        return bool(self.errors)

    def for_phases(self, phases: Iterable[int] | None) -> LintReport:
        """Only the findings whose file is in one of `phases` (all when None): `--phase`
        reports what is wrong in that phase, judged against the whole set."""
        if not phases:
            return self
        prefixes = tuple(f"phase-{p}/" for p in phases)
        return LintReport(
            findings=[f for f in self.findings if f.file.startswith(prefixes)],
            rules=self.rules,
            skipped=self.skipped,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "rules": self.rules,
            "skipped": self.skipped,
            "findings": [f.to_dict() for f in self.findings],
        }


class LintFailed(UserError):
    """The rendered set would not come up as rendered."""


def check(phases: Iterable[PhaseManifests], skip: Iterable[str] = ()) -> LintReport:
    """Run every rule (but those in `skip`) over the set; findings sorted by file.

    The report is kept in the cache (migrate.state.cache) under the sha256 of the set's
    content, `skip`, the rules registered so far and the code (`code_identity`): the same
    set checked again (a `plan` with nothing changed) is answered from there, without
    loading the rules. A set `rendered_set` took whole from the render memo is named by
    the memo instead of its content (`RenderedSet.memo_identity`): no JSON of every
    object. A missing, stale or corrupt entry means the rules run."""
    memo_identity = phases.memo_identity if isinstance(phases, RenderedSet) else None
    phases, skip = list(phases), list(skip)
    key = _memo_key(phases, skip, memo_identity)
    results = None
    if key is not None:
        from migrate.state.cache import ResultCache, default_dir

        results = ResultCache(default_dir())
        kept = _report_from(results.get(key))
        if kept is not None:
            return kept
    report = _check(phases, skip)
    if results is not None and key is not None:
        results.put(key, report.to_dict())
        results.save()
    return report


class RenderedSet(list["PhaseManifests"]):
    """The phases `rendered_set` made, and `memo_identity`: what says their content
    exactly when every task of them came unchanged from the render memo
    (RenderMemo.set_identity), else None."""

    memo_identity: str | None = None


def _memo_key(
    phases: list[PhaseManifests], skip: list[str], memo_identity: str | None = None
) -> str | None:
    """What a report depends on, hashed; None when JSON cannot say the set exactly.

    With `memo_identity` (the set came whole from the render memo, which that string
    names), the set is named by it instead of by its content: no JSON of every object."""
    import hashlib
    import json

    from migrate.state.cache import code_identity, default_dir

    if default_dir() is None:
        return None
    head = {
        "code": code_identity(),
        "skip": skip,
        "rules": sorted(
            [i.id, i.check.__module__, i.check.__qualname__, id(i.check)] for i in RULES.values()
        ),
    }
    if memo_identity is not None:
        document: dict[str, Any] = {**head, "memo": memo_identity}
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "lint|memo|" + hashlib.sha256(text.encode()).hexdigest()
    from migrate.manifests.validate import _plain

    document = {
        **head,
        "manifests": [
            [m.phase, m.task, m.component, m.template, m.app_namespace, m.obj]
            for p in phases
            for m in p.manifests
        ],
        "releases": [
            {**r.to_dict(), "component": r.component, "phase": r.phase, "task": r.task}
            for p in phases
            for r in p.releases
        ],
    }
    if not _plain(document):
        return None
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "lint|" + hashlib.sha256(text.encode()).hexdigest()


def _report_from(value: Any) -> LintReport | None:
    """The report a cache entry holds, or None when it is not one."""
    if not isinstance(value, dict):
        return None
    try:
        findings = [Finding(**f) for f in value["findings"]]
        rules, skipped = value["rules"], value["skipped"]
    except (KeyError, TypeError):
        return None
    if not all(isinstance(r, str) for r in [*rules, *skipped]):
        return None
    if not all(
        isinstance(v, str) and f.severity in ("error", "warning")
        for f in findings
        for v in f.to_dict().values()
    ):
        return None
    return LintReport(findings=findings, rules=list(rules), skipped=list(skipped))


def _check(phases: list[PhaseManifests], skip: list[str]) -> LintReport:
    _load_rules()
    unknown = [s for s in skip if s not in RULES]
    if unknown:
        raise UserError(
            f"--skip-check {', '.join(unknown)}: no such rule",
            hint="the rules are: " + ", ".join(sorted(RULES)),
        )
    model = SetModel.of(phases)
    findings: list[Finding] = []
    ran = []
    for info in RULES.values():
        if info.id in skip:
            continue
        ran.append(info.id)
        findings.extend(info.check(model))
    order = {"error": 0, "warning": 1}
    findings.sort(key=lambda f: (order[f.severity], f.file, f.rule, f.message))
    return LintReport(findings=findings, rules=ran, skipped=skip)


def rendered_set(ctx: Context) -> list[PhaseManifests]:
    """Every phase's `manifests` and `infra` tasks, rendered once per context: the
    renderer and the tasks `plan` already rendered (migrate.actions.manifests) are reused."""
    from migrate.manifests.model import PhaseManifests
    from migrate.manifests.render_memo import render_memo
    from migrate.roadmap import RENDERED_KINDS as RENDERED_ACTIONS

    done = ctx.__dict__.setdefault("_manifests_rendered", {})
    memo = render_memo(ctx)  # what `plan` rendered last time, when nothing changed
    result = RenderedSet()
    for phase in ctx.roadmap.phases:
        tasks = []
        for task in phase.tasks:
            if task.action not in RENDERED_ACTIONS:
                continue
            if (phase.id, task.id) not in done:
                kept = memo.get(phase.id, task.id)
                if kept is not None:
                    done[(phase.id, task.id)] = kept[0]
                else:
                    from migrate.manifests.render import Renderer

                    renderer = ctx.__dict__.get("_manifests_renderer")
                    if renderer is None:
                        renderer = ctx.__dict__["_manifests_renderer"] = Renderer(ctx)
                    done[(phase.id, task.id)] = renderer.render_task(phase.id, task)
            tasks.append(done[(phase.id, task.id)])
        result.append(PhaseManifests(phase=phase.id, tasks=tuple(tasks)))
    memo.save()
    # after the save: a set the memo keeps whole from now on is named by it
    result.memo_identity = memo.set_identity(t for p in result for t in p.tasks)
    return result


def raise_for(report: LintReport, minimum: str = "error") -> None:
    """Raise `LintFailed` listing the findings when they fail at `minimum`."""
    if not report.fails(minimum):
        return
    shown = report.findings[:30]
    more = f"\n  ... and {len(report.findings) - 30} more" if len(report.findings) > 30 else ""
    raise LintFailed(
        f"{len(report.errors)} error(s) and {len(report.warnings)} warning(s) in the rendered "
        "set:\n  " + "\n  ".join(f.line() for f in shown) + more,
        hint="fix the template or migrate.yaml as each finding says; "
        "`--skip-check RULE` leaves a rule out, `--minimum-failure-severity none` reports "
        "without failing",
    )


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether a selector matches `labels`: a LabelSelector (`matchLabels`,
    `matchExpressions`) or a plain map (a Service's selector). An empty selector
    matches everything, as the API server reads it."""
    if not selector:
        return True
    if "matchLabels" in selector or "matchExpressions" in selector:
        plain = dict(selector.get("matchLabels") or {})
        expressions = selector.get("matchExpressions") or []
    else:
        plain, expressions = dict(selector), []
    if any(labels.get(str(k)) != str(v) for k, v in plain.items()):
        return False
    for expression in expressions:
        key, operator = str(expression.get("key")), expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def selector_text(selector: dict[str, Any] | None) -> str:
    """`a=b,c in (d)`: a selector as kubectl prints it, for messages."""
    if not selector:
        return "(everything)"
    if "matchLabels" in selector or "matchExpressions" in selector:
        plain = dict(selector.get("matchLabels") or {})
        expressions = selector.get("matchExpressions") or []
    else:
        plain, expressions = dict(selector), []
    parts = [f"{k}={v}" for k, v in sorted(plain.items())]
    for e in expressions:
        values = ",".join(str(v) for v in e.get("values") or [])
        parts.append(f"{e.get('key')} {e.get('operator')} ({values})".replace(" ()", ""))
    return ",".join(parts)


#: pod labels the operators put on the pods they make: a selector on one of these
#: selects pods that are not in the rendered set (Strimzi: `strimzi.io/cluster`,
#: `strimzi.io/name`; ECK: `elasticsearch.k8s.elastic.co/cluster-name`,
#: `kibana.k8s.elastic.co/name`, `common.k8s.elastic.co/type`)
OPERATOR_POD_LABELS = (
    "strimzi.io/cluster",
    "strimzi.io/name",
    "strimzi.io/kind",
    "strimzi.io/pool-name",
    "elasticsearch.k8s.elastic.co/cluster-name",
    "elasticsearch.k8s.elastic.co/statefulset-name",
    "kibana.k8s.elastic.co/name",
    "common.k8s.elastic.co/type",
    # a Gateway API controller deploys the Gateway's proxy pods itself (Istio's automated
    # deployment labels them with the Gateway's name: GEP-1762, "In-Cluster Gateway
    # Deployments")
    "gateway.networking.k8s.io/gateway-name",
)


def operator_selector(selector: dict[str, Any] | None) -> bool:
    """Whether the selector names pods an operator makes (see OPERATOR_POD_LABELS)."""
    if not selector:
        return False
    keys = set(selector.get("matchLabels") or {}) if "matchLabels" in selector else set()
    keys |= {str(e.get("key")) for e in selector.get("matchExpressions") or []}
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        keys = set(selector)
    return bool(keys & set(OPERATOR_POD_LABELS))


def iter_containers(pod: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`containers`|`initContainers`, container) for every container of a pod spec."""
    for key in ("initContainers", "containers"):
        for container in pod.get(key) or []:
            yield key, container
