"""JSON paths, differences and noise of `migrate compare`."""

from __future__ import annotations

import pytest

from migrate.compare import diff
from migrate.compare.corpus import Case, spread


def test_equal_values_have_no_difference() -> None:
    value = {"a": [1, {"b": "x"}], "c": None}
    assert diff.differences(value, {"c": None, "a": [1, {"b": "x"}]}) == []


def test_differences_name_paths_and_both_sides() -> None:
    found = diff.differences(
        {"total": 3.14, "name": "é", "items": [{"id": 1}]},
        {"total": 3.1, "items": [{"id": 2}], "extra": True},
    )
    texts = {diff.render(d.path): d for d in found}
    assert set(texts) == {"$.total", "$.name", "$.items[0].id", "$.extra"}
    assert texts["$.name"].migrated is diff.ABSENT
    assert "missing in migrated" in texts["$.name"].describe()
    assert texts["$.extra"].to_dict() == {"path": "$.extra", "migrated": True}
    assert texts["$.total"].to_dict() == {"path": "$.total", "legacy": 3.14, "migrated": 3.1}


@pytest.mark.parametrize(("a", "b"), [(1, 1.0), (True, 1), ([1], [1, 2]), ("1", 1)])
def test_types_and_lengths_count(a: object, b: object) -> None:
    assert diff.differences({"v": a}, {"v": b}) != []


def test_paths_render_and_parse_back() -> None:
    path = ("a", 0, "Report Writer", "*")
    text = diff.render(path)
    assert text == '$.a[0]["Report Writer"][*]'
    assert diff.parse(text) == path
    assert diff.parse("$.items[*].id") == ("items", "*", "id")
    with pytest.raises(ValueError, match="JSON path"):
        diff.parse("items.id")
    with pytest.raises(ValueError, match="JSON path"):
        diff.parse("$.a[x]")


def test_noise_is_general_and_covers_subtrees() -> None:
    primary = {"id": "u1", "rows": [{"at": 1, "v": 2}], "deep": {"x": 1}}
    secondary = {"id": "u2", "rows": [{"at": 5, "v": 2}], "deep": {"x": 1}}
    noise = diff.noise(primary, secondary)
    assert noise == {("id",), ("rows", "*", "at")}
    candidate = {"id": "u3", "rows": [{"at": 9, "v": 3}], "deep": {"x": 1}}
    left = diff.beyond(diff.differences(primary, candidate), noise)
    assert [diff.render(d.path) for d in left] == ["$.rows[0].v"]
    assert diff.beyond(diff.differences({"a": {"b": 1}}, {"a": {"b": 2}}), [("a",)]) == []


def test_a_record_may_hold_only_some_keys() -> None:
    answer = {"issue_count": 2, "approved": False, "issues": []}
    assert diff.contains({"issue_count": 2}, answer)
    assert not diff.contains({"issue_count": 3}, answer)
    assert not diff.contains({"format": "markdown"}, answer)
    assert diff.contains({"at": 1}, {"at": 2}, [("at",)])


def test_spread_takes_evenly_and_keeps_order() -> None:
    cases = [Case("p", {"i": i}, f"f:{i}") for i in range(10)]
    assert [c.input["i"] for c in spread(cases, 3)] == [0, 3, 6]
    assert spread(cases, None) == cases
    assert spread(cases, 50) == cases
