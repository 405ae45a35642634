"""Any roadmap the model can hold survives a trip through YAML unchanged."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrate.roadmap import Roadmap, parse_roadmap
from migrate.yamlfile import parse

SLUG = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}", fullmatch=True)
TEXT = st.text(max_size=30)
CHECKS = st.one_of(
    st.builds(lambda p, c: {"file": {"path": p, "contains": c}}, TEXT, TEXT),
    st.builds(lambda r, rc: {"command": {"run": r, "rc": rc}}, TEXT, st.integers(0, 255)),
    st.builds(
        lambda port: {"socket": {"address": f"tcp://127.0.0.1:{port}"}}, st.integers(1, 65535)
    ),
    st.builds(
        lambda u, s: {"http": {"url": f"http://{u}", "status": s}}, TEXT, st.integers(100, 599)
    ),
    st.builds(
        lambda t, n: {"postgres_table": {"table": t, "min_rows": n}}, TEXT, st.integers(0, 10**6)
    ),
    st.builds(lambda k, n: {"k8s_resource": {"kind": k, "name": n}}, TEXT, TEXT),
    st.builds(lambda m: {"testinfra": m}, TEXT),
    st.builds(
        lambda u, e, x, w, p: {
            "event_flow": {
                "orchestrator": f"http://{u}",
                "event": e,
                "expect": x,
                "within": w,
                "payload": p,
            }
        },
        TEXT,
        st.text(min_size=1, max_size=20),
        st.lists(st.text(min_size=1), min_size=1, max_size=3),
        st.floats(0.5, 3600),
        st.dictionaries(TEXT, st.integers() | TEXT, max_size=3),
    ),
    st.builds(
        lambda u, n, t: {"cache_hit": {"url": f"https://{u}", "plugin": n, "timeout": t}},
        TEXT,
        st.text(min_size=1, max_size=20),
        st.floats(0.1, 600),
    ),
)


@st.composite
def checks(draw: st.DrawFn) -> dict[str, Any]:
    check = draw(CHECKS)
    if draw(st.booleans()):
        check["name"] = draw(TEXT)
    if draw(st.booleans()) and not {"event_flow", "cache_hit"} & set(check):  # no host
        check["host"] = draw(
            st.sampled_from(["docker://web", "ssh://deploy@bastion", "kubectl://pod"])
        )
    return check


@st.composite
def roadmaps(draw: st.DrawFn) -> Roadmap:
    ids = draw(st.lists(SLUG, min_size=1, max_size=10, unique=True))
    phase_count = draw(st.integers(1, min(4, len(ids))))
    cuts = (
        sorted(draw(st.lists(st.integers(1, len(ids) - 1), max_size=phase_count - 1, unique=True)))
        if len(ids) > 1
        else []
    )
    bounds = [0, *cuts, len(ids)]
    phases = []
    for number, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        tasks = []
        for index in range(start, end):
            action = draw(
                st.sampled_from(["manual", "files", "manifests", "infra", "images", "data"])
            )
            if action == "files":
                params: dict[str, Any] = {"files": [{"template": draw(TEXT), "path": draw(SLUG)}]}
            elif action == "manual":
                params = {}
            elif action == "images":
                params = {"plugins": "all", "push": draw(st.booleans())}
            elif action == "manifests":
                params = {
                    "components": draw(
                        st.lists(
                            st.sampled_from(["istio", "kafka", "hpa"]), min_size=1, unique=True
                        )
                    )
                }
            elif action == "infra":
                params = {
                    "resources": draw(
                        st.lists(st.sampled_from(["namespace", "rbac"]), min_size=1, unique=True)
                    )
                }
            else:  # data
                params = {
                    "datasets": draw(st.just("all") | st.lists(TEXT, max_size=3)),
                    "backup": {"before_load": draw(st.booleans()), "dir": draw(TEXT)},
                }
            earlier = ids[:index]
            tasks.append(
                {
                    "id": ids[index],
                    "title": draw(TEXT),
                    "action": action,
                    "with": params,
                    "needs": draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3))
                    if earlier
                    else [],
                    "checks": draw(st.lists(checks(), max_size=3)),
                }
            )
        phases.append(
            {
                "id": number,
                "name": draw(TEXT),
                "duration": draw(TEXT),
                "description": draw(TEXT),
                "tasks": tasks,
            }
        )
    return Roadmap.model_validate({"phases": phases})


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(roadmaps())
def test_roundtrip_through_yaml(roadmap: Roadmap) -> None:
    # allow_unicode=False: PyYAML would write U+0085 raw, which YAML reads as a line break
    text = yaml.safe_dump(roadmap.to_data(), sort_keys=False)
    again = parse_roadmap(parse(text, Path("roadmap.yaml")))
    assert again == roadmap
    assert again.to_data() == roadmap.to_data()
