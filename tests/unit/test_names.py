"""The name rules of DESIGN 3.5 (tables) and 3.7 (images), with property tests."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from migrate.names import image_repository, image_repository_name, table_name

DATASET = st.text(min_size=1, max_size=200).filter(lambda s: s.strip("/") != "")


def test_table_name_examples() -> None:
    assert table_name("agent_runs") == "agent_runs"
    assert table_name("metrics/daily") == "metrics__daily"
    assert table_name("Users-2026.v2") == "users_2026_v2"
    assert table_name("'; DROP TABLE x; --") == "___drop_table_x____"
    assert table_name("é") == "_"


def test_long_table_names_are_cut_with_a_hash() -> None:
    long_a = "a" * 70 + "/one"
    long_b = "a" * 70 + "/two"
    assert len(table_name(long_a)) == 63
    assert table_name(long_a) != table_name(long_b)
    assert re.fullmatch(r"a{54}_[0-9a-f]{8}", table_name(long_a))
    assert table_name("b" * 63) == "b" * 63


@given(DATASET)
def test_table_names_are_valid_identifiers(dataset: str) -> None:
    name = table_name(dataset)
    assert re.fullmatch(r"[a-z0-9_]{1,63}", name)
    assert table_name(dataset) == name  # deterministic


@given(DATASET, DATASET)
def test_long_table_names_do_not_collide(a: str, b: str) -> None:
    if a != b and len(table_name(a)) == 63 and table_name(a) == table_name(b):
        # only possible when neither was cut, i.e. both map to the same 63 characters
        assert len(a.replace("/", "__")) <= 63 and len(b.replace("/", "__")) <= 63


def test_image_names() -> None:
    assert image_repository_name("Report-Writer") == "report-writer"
    assert image_repository_name("code_reviewer") == "code-reviewer"
    assert image_repository_name("--x__y--") == "x-y"
    assert (
        image_repository("registry.local:5000/team/", "Planner")
        == "registry.local:5000/team/planner"
    )


@given(st.text(min_size=1, max_size=120))
def test_image_names_are_valid_references(plugin: str) -> None:
    name = image_repository_name(plugin)
    # Docker's path-component grammar, restricted to what is also a DNS label
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", name), name
    assert len(name) <= 63
