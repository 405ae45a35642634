"""Property: arbitrary JSON objects round-trip through a load exactly."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrate import api
from tests.integration.data.conftest import query

TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=20)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
OBJECTS = st.dictionaries(TEXT, VALUES, max_size=6)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(docs=st.lists(OBJECTS, min_size=1, max_size=5), ascii_only=st.booleans())
def test_json_objects_round_trip(
    tmp_path: Path, project: Path, db_env: str, docs: list[dict[str, object]], ascii_only: bool
) -> None:
    data = project.parent / "agents-app" / "data"
    (data / "prop").mkdir(exist_ok=True)
    (data / "prop" / "p.jsonl").write_text(
        "".join(json.dumps(d, ensure_ascii=ascii_only) + "\n" for d in docs), encoding="utf-8"
    )
    (data / "prop" / "p.json").write_text(
        json.dumps(docs, ensure_ascii=ascii_only), encoding="utf-8"
    )
    [result] = api.data_load(project, ["prop"]).datasets
    assert result.rejected == 0
    for source in ("prop/p.jsonl", "prop/p.json"):
        rows = query(
            db_env, "SELECT doc::text FROM legacy.prop WHERE _source = %s ORDER BY _record", source
        )
        # compare by exact value: the database keeps the JSON text's numbers exactly, where
        # a Python float is only the nearest double (8.139550965983259e+16 is 81395509659832590)
        exact = [json.loads(text, parse_float=Decimal, parse_int=Decimal) for (text,) in rows]
        assert exact == [
            json.loads(json.dumps(d), parse_float=Decimal, parse_int=Decimal) for d in docs
        ]
