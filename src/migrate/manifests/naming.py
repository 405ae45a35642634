"""Kubernetes names for plugins, workloads and topics.

Plugin names come from directory names and plugin.yaml (`Report-Writer`,
`code_reviewer`, anything up to 255 characters); Kubernetes wants DNS-1123
labels: lower-case alphanumerics and '-', at most 63 characters, and for
Services (DNS-1035) a letter first. The rules here make every name valid,
stable across runs (no randomness, a hash of the original when cut) and
unique (two plugins that clean up to the same text differ by their hash).
"""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63
MAX_SUBDOMAIN = 253
_NOT_LABEL_CHAR = re.compile(r"[^a-z0-9]+")
_NOT_SUBDOMAIN_CHAR = re.compile(r"[^a-z0-9.-]+")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def dns_label(name: str, *, suffix: str = "", max_length: int = MAX_LABEL) -> str:
    """`name` + `-suffix` as a DNS-1035 label (valid for Services and every other object).

    Lower-cased; runs of other characters become one '-'; a name that does not
    start with a letter gets `p-` in front. When the name had to be cut to fit,
    or prefixed, a hash of the original keeps it unique; `planner` stays `planner`.
    """
    base = _NOT_LABEL_CHAR.sub("-", name.lower()).strip("-")
    tail = f"-{suffix}" if suffix else ""
    prefixed = not base or not base[0].isalpha()
    if prefixed:
        base = f"p-{base}".rstrip("-")
    if prefixed or len(base) + len(tail) > max_length:
        marker = f"-{short_hash(name)}"
        base = base[: max_length - len(marker) - len(tail)].rstrip("-") + marker
    return base + tail


def plugin_label(name: str, suffix: str = "") -> str:
    """The Kubernetes name of a plugin, optionally with a role suffix (`-green`, `-worker`).

    `Report-Writer` -> `report-writer`, `code_reviewer` -> `code-reviewer`:
    only case and '_' differ from the name, which stays readable and (since
    the inventory refuses two plugins with the same image name) unique. Any
    other change, or a cut to 63 characters, adds a hash of the original.
    """
    return dns_label(name, suffix=suffix)


def topic_resource_name(topic: str) -> str:
    """The `metadata.name` of a KafkaTopic: a DNS-1123 subdomain (`review.done` stays).

    `spec.topicName` keeps the event's own spelling; only the object name is
    cleaned, with a hash of the original when anything changed.
    """
    name = _NOT_SUBDOMAIN_CHAR.sub("-", topic.lower())
    name = re.sub(r"[-.]*\.[-.]*", ".", name).strip(".-")
    if name != topic or len(name) > MAX_LABEL:
        marker = f"-{short_hash(topic)}"
        name = (name[: MAX_LABEL - len(marker)].rstrip(".-") or "topic") + marker
    return name
