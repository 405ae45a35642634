"""The vendored CRDs' JSON forms (manifests/crds/<project>/<name>.json, issue 14): each
says exactly what its YAML says, and a stale, foreign or garbled one is never used."""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from migrate.manifests import crds
from migrate.manifests import validate as validation
from migrate.manifests.validate import VENDORED_CRDS

HERE = files("migrate.manifests")
VENDORED = sorted({v.file for v in VENDORED_CRDS.values()})


@pytest.mark.parametrize("file", VENDORED)
def test_each_json_form_is_exactly_its_yaml(file: str) -> None:
    data = HERE.joinpath(file).read_bytes()
    text = HERE.joinpath(crds.json_name(file)).read_text(encoding="utf-8")
    body = json.loads(text)
    assert body["yaml_sha256"] == hashlib.sha256(data).hexdigest(), (
        f"{file} changed since its JSON form was written: run scripts/refresh-crds --json-only"
    )
    # as the pure-Python reader reads it (libyaml reads the same: the next assertion)
    assert body["crd"] == yaml.safe_load(data.decode("utf-8"))
    assert crds.from_json_form(text, data) == crds.read_yaml(data)
    assert text == crds.json_form(data)  # what scripts/refresh-crds writes, byte for byte


def test_every_json_form_has_its_yaml_and_every_yaml_its_json_form() -> None:
    root = Path(str(HERE.joinpath("crds")))
    yamls = {p.relative_to(root.parent).as_posix() for p in root.glob("*/*.yaml")}
    jsons = {p.relative_to(root.parent).as_posix() for p in root.glob("*/*.json")}
    assert yamls == set(VENDORED)
    assert jsons == {crds.json_name(f) for f in VENDORED}
    for directory in root.iterdir():  # the licence and provenance stay with the files
        if directory.is_dir() and not directory.name.startswith("__"):
            assert (directory / "LICENSE").is_file() and (directory / "README.md").is_file()


CRD_V1 = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  versions:
    - name: v1
      served: true
      schema:
        openAPIV3Schema:
          type: object
          properties: {spec: {type: object, properties: {size: {type: integer}}}}
"""


def test_a_stale_json_form_is_not_used() -> None:
    old = CRD_V1.encode()
    new = CRD_V1.replace("integer", "string").encode()
    stale = crds.json_form(old)
    assert crds.from_json_form(stale, old) == crds.read_yaml(old)
    assert crds.from_json_form(stale, new) is None  # derived from other bytes


@pytest.mark.parametrize(
    "garbled",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"format": 2, "yaml_sha256": "%s", "crd": {}}',
        b'{"format": 1, "yaml_sha256": "%s", "crd": []}',
        b'{"format": 1, "crd": {}}',
    ],
)
def test_a_garbled_or_foreign_json_form_is_not_used(garbled: bytes) -> None:
    data = CRD_V1.encode()
    text = garbled.replace(b"%s", hashlib.sha256(data).hexdigest().encode())
    assert crds.from_json_form(text, data) is None


def test_a_crd_json_cannot_say_is_refused() -> None:
    with pytest.raises(ValueError):
        crds.json_form(CRD_V1.replace("name: v1", "name: 2024-01-01").encode())


def test_validation_reads_the_yaml_when_the_json_form_is_stale_or_garbled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schema validate.py checks against comes from the YAML whatever the JSON says."""
    package = tmp_path / "pkg"
    (package / "crds" / "x").mkdir(parents=True)
    yaml_file = package / "crds" / "x" / "things.yaml"
    json_file = package / "crds" / "x" / "things.json"
    yaml_file.write_text(CRD_V1, encoding="utf-8")
    monkeypatch.setattr(
        "importlib.resources.files", lambda name: package if name == "migrate.manifests" else None
    )
    expected = crds.read_yaml(CRD_V1.encode())
    assert validation._crd_document("crds/x/things.yaml") == expected  # no JSON form
    json_file.write_text(crds.json_form(CRD_V1.replace("integer", "string").encode()))
    assert validation._crd_document("crds/x/things.yaml") == expected  # a stale one
    json_file.write_bytes(b'{"format": 1, "yaml_')
    assert validation._crd_document("crds/x/things.yaml") == expected  # a truncated one
    json_file.write_text(crds.json_form(CRD_V1.encode()))
    assert validation._crd_document("crds/x/things.yaml") == expected  # the right one
    # the right one is what is read: a hand-made JSON with the YAML's sha256 wins
    forged = {
        "format": crds.JSON_FORMAT,
        "yaml_sha256": hashlib.sha256(CRD_V1.encode()).hexdigest(),
        "crd": {"forged": True},
    }
    json_file.write_text(json.dumps(forged))
    assert validation._crd_document("crds/x/things.yaml") == {"forged": True}


@pytest.mark.parametrize("key", sorted(VENDORED_CRDS), ids=lambda key: key[1])
def test_each_kinds_schema_is_the_one_its_yaml_gives(
    key: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    group, kind = key
    file = VENDORED_CRDS[key].file
    fast = validation._crd_document(file)
    monkeypatch.setattr(crds, "from_json_form", lambda text, data: None)  # as if none
    assert validation._crd_document(file) == fast
    for version in fast["spec"]["versions"]:
        name = version["name"]
        monkeypatch.undo()
        with_json = validation._crd_schema(group, kind, name)
        monkeypatch.setattr(crds, "from_json_form", lambda text, data: None)
        assert validation._crd_schema(group, kind, name) == with_json
