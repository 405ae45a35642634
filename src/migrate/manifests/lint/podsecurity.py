"""Pod Security Admission: the namespace's enforced level against every pod it will hold.

The level is the rendered Namespace's `pod-security.kubernetes.io/enforce` label. The pods
are ours (the pod templates as rendered) and those the operators make from what they are
given (strimzi.py: Strimzi's pod security provider; eck.py: ECK's defaults and podTemplate
merge).
A pod the level rejects never starts: its ReplicaSet or StatefulSet reports FailedCreate.
The checks are those of the Pod Security Standards (baseline, restricted) that a pod
template can fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from migrate.manifests.lint import Finding, SetModel, iter_containers, rule
from migrate.manifests.lint.operated import all_pods
from migrate.manifests.lint.pods import Pod, dig, is_injected

PSS = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
ISTIO_PSA = "https://istio.io/latest/docs/setup/additional-setup/pod-security-admission/"
HIGH_UID = (
    "checkov CKV_K8S_40 'Containers should run as a high UID to avoid host conflict' "
    "(runAsUser >= 10000; kubesec, Datree CONTAINERS_INCORRECT_RUNASUSER_VALUE_LOWUID)"
)

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}


def enforced_level(model: SetModel, namespace: str) -> str | None:
    """The enforced level of a namespace the set renders; None when it renders none."""
    if model.find("Namespace", None, namespace) is None:
        return None
    level = model.namespace_labels(namespace).get("pod-security.kubernetes.io/enforce")
    return level if level in LEVELS else "privileged"


def _baseline(spec: dict[str, Any]) -> Iterator[str]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            yield f"{key}: true"
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            yield f"hostPath volume {volume.get('name')}"
    if dig(spec, "securityContext", "seccompProfile", "type") == "Unconfined":
        yield "pod seccompProfile Unconfined"
    for _, c in iter_containers(spec):
        context, name = c.get("securityContext") or {}, c.get("name")
        if context.get("privileged"):
            yield f"container {name}: privileged: true"
        added = set(dig(context, "capabilities", "add") or []) - BASELINE_CAPABILITIES
        if added:
            yield f"container {name}: capabilities.add {sorted(added)}"
        if any(p.get("hostPort") for p in c.get("ports") or []):
            yield f"container {name}: hostPort"
        if dig(context, "seccompProfile", "type") == "Unconfined":
            yield f"container {name}: seccompProfile Unconfined"
        if context.get("procMount", "Default") != "Default":
            yield f"container {name}: procMount {context.get('procMount')}"


def _restricted(spec: dict[str, Any]) -> Iterator[str]:
    pod = spec.get("securityContext") or {}
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"} - RESTRICTED_VOLUMES
        if kinds and "hostPath" not in kinds:
            yield f"volume {volume.get('name')} of type {sorted(kinds)[0]}"
    if pod.get("runAsUser") == 0:
        yield "pod runAsUser: 0"
    for _, c in iter_containers(spec):
        context, name = c.get("securityContext") or {}, c.get("name")
        missing = []
        if context.get("allowPrivilegeEscalation") is not False:
            missing.append("allowPrivilegeEscalation: false")
        if "ALL" not in (dig(context, "capabilities", "drop") or []):
            missing.append("capabilities.drop [ALL]")
        if not context.get("runAsNonRoot", pod.get("runAsNonRoot")):
            missing.append("runAsNonRoot: true (pod or container)")
        seccomp = dig(context, "seccompProfile", "type") or dig(pod, "seccompProfile", "type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            missing.append("seccompProfile RuntimeDefault (pod or container)")
        if missing:
            yield f"container {name} lacks " + ", ".join(missing)
        added = set(dig(context, "capabilities", "add") or []) - {"NET_BIND_SERVICE"}
        if added:
            yield f"container {name}: capabilities.add {sorted(added)} (only NET_BIND_SERVICE)"
        if context.get("runAsUser") == 0:
            yield f"container {name}: runAsUser: 0"


def violations(spec: dict[str, Any], level: str) -> list[str]:
    found = list(_baseline(spec)) if LEVELS[level] >= 1 else []
    if LEVELS[level] >= 2:
        found += list(_restricted(spec))
    return found


def istio_cni(model: SetModel) -> bool:
    """Whether sidecars come without the istio-init container (NET_ADMIN, NET_RAW)."""
    istiod = model.release("istiod")
    return bool((istiod and dig(istiod.values, "pilot", "cni", "enabled")) or model.release("cni"))


def _fix(pod: Pod, level: str) -> tuple[str, str]:
    if pod.operator == "strimzi":
        return (
            "install the Strimzi operator with the restricted provider: the "
            "strimzi-kafka-operator release's values `extraEnvs: [{name: "
            "STRIMZI_POD_SECURITY_PROVIDER_CLASS, value: restricted}]`, or set the "
            "containers' securityContext in the Kafka/KafkaNodePool `template` "
            "(kafkaContainer, topicOperatorContainer, userOperatorContainer)",
            pod.source + "; packaging/helm-charts/helm3/strimzi-kafka-operator/values.yaml "
            "(extraEnvs)",
        )
    if pod.operator == "eck":
        return (
            "set the securityContext of each container named above in the podTemplate "
            "(an init container of the same name, e.g. Kibana's elastic-internal-init, is "
            "merged with ECK's by name): allowPrivilegeEscalation false, capabilities.drop "
            "[ALL], runAsNonRoot true, seccompProfile RuntimeDefault",
            pod.source,
        )
    return (
        f"make the pod template meet the {level} Pod Security Standard "
        "(securityContext of the pod and of every container)",
        PSS,
    )


@rule("pod-security-admission", "every pod meets its namespace's enforced Pod Security level")
def pod_security(model: SetModel) -> Iterable[Finding]:
    cni = istio_cni(model)
    for pod in all_pods(model):
        level = enforced_level(model, pod.namespace)
        if level is None or level == "privileged" or pod.operator in ("helm", "cluster"):
            continue
        found = violations(pod.spec, level)
        if found:
            fix, source = _fix(pod, level)
            yield Finding(
                rule="pod-security-admission",
                severity="error",
                object=pod.owner,
                file=pod.file,
                message=f"namespace {pod.namespace} enforces Pod Security `{level}`, which "
                "rejects these pods: " + "; ".join(found),
                fix=fix,
                source=source,
            )
        if not cni and is_injected(model, pod):
            yield Finding(
                rule="pod-security-admission",
                severity="error",
                object=pod.owner,
                file=pod.file,
                message=f"the pods get an Istio sidecar in namespace {pod.namespace} "
                f"(`{level}`), and without Istio CNI the injected istio-init container adds "
                "NET_ADMIN and NET_RAW, which the level rejects",
                fix="enable Istio CNI (istiod values pilot.cni.enabled: true and the cni chart)",
                source=ISTIO_PSA,
            )


@rule("run-as-high-uid", "our containers run as a UID of 10000 or more (host UIDs are lower)")
def high_uid(model: SetModel) -> Iterable[Finding]:
    for workload in model.workloads:
        pod_user = dig(workload.pod, "securityContext", "runAsUser")
        low = sorted(
            {
                f"{c.get('name')} ({uid})"
                for _, c in iter_containers(workload.pod)
                for uid in [dig(c, "securityContext", "runAsUser") or pod_user]
                if uid is not None and 0 < int(uid) < 10000
            }
        )
        if low:
            yield Finding(
                rule="run-as-high-uid",
                severity="warning",
                object=workload.manifest.ref,
                file=model.where(workload.manifest),
                message="containers run as a UID below 10000, which may be a user of the "
                "node (a container that escapes shares its files): " + ", ".join(low),
                fix="run as a UID of 10000 or more (e.g. runAsUser/runAsGroup/fsGroup 10001; "
                "an emptyDir or PVC with fsGroup keeps the data writable)",
                source=HIGH_UID,
            )
