"""Kubernetes names of awkward plugins: valid DNS-1123/1035, stable, unique."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from migrate.manifests.naming import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    plugin_label,
    topic_resource_name,
)
from migrate.manifests.render import render_project
from migrate.project import open_context
from tests.conftest import write

LONG = "an_extremely-Long.plugin name that goes on and on past sixty-three characters"


def test_readable_names_stay_readable() -> None:
    assert plugin_label("planner") == "planner"
    assert plugin_label("Report-Writer") == "report-writer"
    assert plugin_label("code_reviewer") == "code-reviewer"
    assert plugin_label("code_reviewer", "green") == "code-reviewer-green"


def test_long_names_are_cut_with_a_hash() -> None:
    for suffix in ("", "blue", "green", "worker"):
        name = plugin_label(LONG, suffix)
        assert DNS_LABEL.match(name) and len(name) <= 63, name
        assert name == plugin_label(LONG, suffix)  # stable
    assert plugin_label(LONG) != plugin_label(LONG + "!")  # unique


def test_names_that_do_not_start_with_a_letter() -> None:
    assert DNS_LABEL.match(plugin_label("1password"))
    assert DNS_LABEL.match(plugin_label("__"))
    assert plugin_label("1password") != plugin_label("p-1password")


@given(st.text(min_size=1, max_size=120), st.sampled_from(["", "blue", "green", "worker"]))
def test_every_plugin_name_gives_a_valid_label(name: str, suffix: str) -> None:
    label = plugin_label(name, suffix)
    assert DNS_LABEL.match(label), label
    assert len(label) <= 63


@given(st.text(min_size=1, max_size=120), st.text(min_size=1, max_size=120))
def test_distinct_long_names_stay_distinct(a: str, b: str) -> None:
    if a != b and len(a) > 70 and len(b) > 70:
        assert plugin_label(a) != plugin_label(b)


@given(st.text(min_size=1, max_size=300))
def test_every_topic_gives_a_valid_object_name(topic: str) -> None:
    name = topic_resource_name(topic)
    assert DNS_SUBDOMAIN.match(name) and len(name) <= 63, name


def test_topic_names_keep_dots() -> None:
    assert topic_resource_name("review.done") == "review.done"
    assert topic_resource_name("Review.Done") != "review.done"


def test_awkward_plugins_render_valid_unique_names(project: Path) -> None:
    app = project.parent / "agents-app"
    write(app / "plugins" / "long" / "plugin.yaml", f"name: {LONG}\nentrypoint: m:handle\n")
    write(app / "plugins" / "long" / "m.py", "def handle(payload):\n    return payload\n")
    phases = render_project(open_context(project))
    seen: set[tuple[str, str]] = set()
    for manifest in (m for p in phases for m in p.manifests):
        key = (manifest.kind, manifest.name)
        assert key not in seen, key
        seen.add(key)
        if manifest.kind != "KafkaTopic":
            assert DNS_LABEL.match(manifest.name) and len(manifest.name) <= 63, manifest.name
    deployments = {n for k, n in seen if k == "Deployment"}
    assert {"report-writer-blue", "code-reviewer-green"} <= deployments
    assert any(n.startswith("an-extremely-long-plugin") for n in deployments)
