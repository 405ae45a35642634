"""The replay corpus: recorded invocations of the legacy plugins.

From `replay:` in migrate.yaml (a dataset of the application, read with the
readers of `data load`, so formats behave the same), or from `--inputs FILE`
(JSON Lines of `{"plugin", "input"}`, optionally `"output"`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate.config import CONFIG_FILE
from migrate.errors import UserError

if TYPE_CHECKING:
    from migrate.config import Replay
    from migrate.inventory import Inventory
    from migrate.reporting import Reporter


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a record without a recorded output


@dataclass(frozen=True)
class Case:
    """One recorded invocation."""

    plugin: str
    input: dict[str, Any]
    origin: str  # where it was recorded: `agent_runs/runs-2026-01.jsonl:2`
    recorded: Any = MISSING  # the recorded output, when the record has one


@dataclass
class Corpus:
    cases: dict[str, list[Case]] = field(default_factory=dict)  # by plugin, in file order
    source: str = ""  # "dataset agent_runs" or the --inputs file
    skipped: int = 0  # records the filter left out
    rejected: int = 0  # records that could not be read (warned about)

    def __len__(self) -> int:
        return sum(len(c) for c in self.cases.values())


def spread(cases: Sequence[Case], n: int | None) -> list[Case]:
    """`n` cases spread evenly over `cases` (all when n is None or not smaller)."""
    if n is None or n >= len(cases):
        return list(cases)
    return [cases[(i * len(cases)) // n] for i in range(n)]


def dig(record: Mapping[str, Any], key: str) -> Any:
    """`record[key]`, where `a.b` is `record["a"]["b"]` (a key with a dot wins as it is)."""
    if key in record:
        return record[key]
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def load(
    project_dir: Path,
    replay: Replay | None,
    inventory: Inventory,
    inputs: Path | None = None,
    reporter: Reporter | None = None,
) -> Corpus:
    """The corpus, checked: every plugin it names exists, every input is an object."""
    known = {p.name for p in inventory.plugins}
    if inputs is not None:
        corpus = _from_file(inputs, known)
    elif replay is not None:
        corpus = _from_dataset(project_dir, replay, inventory, known, reporter)
    else:
        raise UserError(
            "no replay corpus: migrate.yaml has no `replay:` section and no --inputs was given",
            file=project_dir / CONFIG_FILE,
            key="replay",
            hint="add `replay: {dataset: NAME, plugin_key: plugin, input_key: input}` naming "
            'the dataset of recorded invocations, or pass --inputs FILE.jsonl ({"plugin", '
            '"input"} a line)',
        )
    if not len(corpus):
        where = f"--inputs {inputs}" if inputs is not None else "replay.dataset"
        why = (
            f" ({corpus.skipped} record(s) left out by replay.where)"
            if corpus.skipped
            else f" ({corpus.rejected} unreadable)"
            if corpus.rejected
            else ""
        )
        raise UserError(
            f"the replay corpus {corpus.source} holds no invocation to replay{why}",
            file=inputs if inputs is not None else project_dir / CONFIG_FILE,
            key=None if inputs is not None else "replay",
            hint=f"check {where}"
            + ("" if inputs is not None else ", replay.where and the keys in replay"),
        )
    return corpus


def _from_dataset(
    project_dir: Path,
    replay: Replay,
    inventory: Inventory,
    known: set[str],
    reporter: Reporter | None,
) -> Corpus:
    from migrate.data.records import Reject, read

    config_file = project_dir / CONFIG_FILE
    dataset = next((d for d in inventory.datasets if d.name == replay.dataset), None)
    if dataset is None:
        raise UserError(
            f"replay.dataset names {replay.dataset!r}, which is not a dataset of the application",
            file=config_file,
            key="replay.dataset",
            hint=f"datasets: {', '.join(d.name for d in inventory.datasets) or 'none'}",
        )
    corpus = Corpus(source=f"dataset {dataset.name}")
    for data_file in dataset.files:
        for item in read(data_file.path, data_file.format):
            origin = f"{data_file.relative}:{item.record if isinstance(item, Reject) else item[0]}"
            if isinstance(item, Reject):
                corpus.rejected += 1
                if reporter is not None:
                    reporter.warn(f"replay corpus: {origin} is skipped: {item.reason}")
                continue
            record = json.loads(item[1])
            if not _kept(record, replay.where):
                corpus.skipped += 1
                continue
            plugin = dig(record, replay.plugin_key)
            payload = dig(record, replay.input_key)
            recorded = dig(record, replay.output_key) if replay.output_key else MISSING
            _check(origin, plugin, payload, known, config_file, replay)
            corpus.cases.setdefault(plugin, []).append(Case(plugin, payload, origin, recorded))
    return corpus


def _kept(record: Mapping[str, Any], where: Mapping[str, Iterable[Any]]) -> bool:
    for key, allowed in where.items():
        value = dig(record, key)
        if value is MISSING or not any(_same(value, a) for a in allowed):
            return False
    return True


def _same(value: Any, allowed: Any) -> bool:
    return type(value) is type(allowed) and bool(value == allowed)


def _check(
    origin: str,
    plugin: Any,
    payload: Any,
    known: set[str],
    config_file: Path,
    replay: Replay,
) -> None:
    if not isinstance(plugin, str) or not plugin:
        raise UserError(
            f"record {origin} has no plugin name at {replay.plugin_key!r} (found {_short(plugin)})",
            file=config_file,
            key="replay.plugin_key",
            hint="name the key of the records that holds the plugin's name",
        )
    if plugin not in known:
        raise UserError(
            f"record {origin} names plugin {plugin!r}, which is not in the application",
            file=config_file,
            key="replay.plugin_key",
            hint=f"plugins: {', '.join(sorted(known)) or 'none'}; or leave such records out "
            "with replay.where",
        )
    if not isinstance(payload, dict):
        raise UserError(
            f"record {origin}: the input at {replay.input_key!r} is {_short(payload)}, "
            "not a JSON object",
            file=config_file,
            key="replay.input_key",
            hint="name the key that holds the payload the plugin was called with",
        )


def _from_file(path: Path, known: set[str]) -> Corpus:
    if not path.is_file():
        raise UserError(f"--inputs {path} does not exist", hint="give a JSON Lines file")
    corpus = Corpus(source=str(path))
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                line = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise UserError(
                    f"{where}: not JSON ({exc})",
                    file=path,
                    line=number,
                    hint='one object a line: {"plugin": NAME, "input": {...}}',
                ) from None
            if not isinstance(line, dict) or "plugin" not in line or "input" not in line:
                raise UserError(
                    f'{where}: expected an object with "plugin" and "input", found {_short(line)}',
                    file=path,
                    line=number,
                    hint='one object a line: {"plugin": NAME, "input": {...}}',
                )
            plugin, payload = line["plugin"], line["input"]
            if plugin not in known:
                raise UserError(
                    f"{where}: no plugin {plugin!r} in the application",
                    file=path,
                    line=number,
                    hint=f"plugins: {', '.join(sorted(known)) or 'none'}",
                )
            if not isinstance(payload, dict):
                raise UserError(
                    f'{where}: "input" is {_short(payload)}, not a JSON object',
                    file=path,
                    line=number,
                )
            recorded = line.get("output", MISSING)
            origin = f"{path.name}:{number}"
            corpus.cases.setdefault(plugin, []).append(Case(plugin, payload, origin, recorded))
    return corpus


def _short(value: Any, limit: int = 60) -> str:
    if value is MISSING:
        return "nothing"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_PLUGIN_KEYS = ("plugin", "plugin_name", "agent")
_INPUT_KEYS = ("input", "payload", "request", "args")
_OUTPUT_KEYS = ("output", "result", "response")
_SUCCESS = ("ok", "success", "succeeded", "successful", "done", "completed")


def propose(inventory: Inventory, look: int = 200) -> dict[str, Any] | None:
    """A `replay:` section for the first dataset that looks like recorded invocations (a
    plugin's name and an input object in each record), or None. Reads `look` records."""
    from itertools import islice

    from migrate.data.records import Reject, read

    names = {p.name for p in inventory.plugins}
    if not names:
        return None
    for dataset in inventory.datasets:
        records: list[dict[str, Any]] = []
        try:
            for data_file in dataset.files:
                for item in islice(read(data_file.path, data_file.format), look):
                    if not isinstance(item, Reject):
                        record = json.loads(item[1])
                        if isinstance(record, dict):
                            records.append(record)
                if len(records) >= look:
                    break
        except (OSError, ValueError, RecursionError, MemoryError):
            # a proposal is a convenience: a dataset init cannot read is not one (data load
            # reports it properly, with the file and the reason)
            continue
        if not records:
            continue
        plugin_key = next(
            (k for k in _PLUGIN_KEYS if all(r.get(k) in names for r in records)), None
        )
        input_key = next(
            (k for k in _INPUT_KEYS if all(isinstance(r.get(k), dict) for r in records)), None
        )
        if plugin_key is None or input_key is None:
            continue
        section: dict[str, Any] = {
            "dataset": dataset.name,
            "plugin_key": plugin_key,
            "input_key": input_key,
        }
        output_key = next((k for k in _OUTPUT_KEYS if all(k in r for r in records)), None)
        if output_key:
            section["output_key"] = output_key
        statuses = {str(r["status"]) for r in records if isinstance(r.get("status"), str)}
        good = sorted(s for s in statuses if s.lower() in _SUCCESS)
        if good:
            section["where"] = {"status": good}
        return section
    return None
