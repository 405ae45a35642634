"""A cache of results that are pure functions of their inputs (what `plan` recomputes).

`plan` validates every rendered object strictly against its schema on every run;
the answer depends only on the object's content and on the schema's identity, so
it is kept here under a key made of both (migrate.manifests.validate says which).

Where: `$MIGRATE_CACHE_DIR`, else `$XDG_CACHE_HOME/migrate`, else `~/.cache/migrate`
(`plan-cache.json`: the answers, and the whole-set checks' reports; `value-*.json`:
larger derived values, such as a vendored CRD's schema and each project's render memo,
migrate.manifests.render_memo; `jinja-*/`: compiled templates). Not under the project's
`.migrate/`: `plan` changes nothing in the project (it must not create `.migrate/`),
and the entries are content-addressed, so projects and CI jobs can share them.
`MIGRATE_NO_CACHE=1` turns the cache off.

A cache can only ever save time, never change an answer: a missing, truncated,
garbled or foreign file (each file carries the sha256 of its content), an entry of
the wrong shape and a directory that cannot be written all read as "not cached",
and the caller computes the result. A file is replaced atomically (write a
temporary file, then rename), so a reader never sees half of it; two plans at once
both write a valid file, the last one wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: the shape of the file; another value (an older or newer migrate) reads as empty
FORMAT = 1
FILENAME = "plan-cache.json"
#: entries kept at most; the oldest written go first
MAX_ENTRIES = 20_000


def default_dir() -> Path | None:
    """Where the cache lives, or None when it is turned off."""
    if os.environ.get("MIGRATE_NO_CACHE", "").strip() not in ("", "0"):
        return None
    explicit = os.environ.get("MIGRATE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "migrate"


class ResultCache:
    """Key -> JSON value, read once, written back (atomically) only when it changed.

    A key says everything the value depends on; `get` answers None when the key is
    not there or the file could not be read, and the caller then computes the value.
    """

    def __init__(self, directory: Path | None) -> None:
        self.path = directory / FILENAME if directory is not None else None
        self._entries: dict[str, Any] | None = None  # read on first use
        self._dirty = False

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = _read_once(self.path) if self.path is not None else {}
        return self._entries

    def get(self, key: str) -> Any:
        return self._load().get(key)

    def put(self, key: str, value: Any) -> None:
        entries = self._load()
        if entries.get(key) != value:
            entries.pop(key, None)  # re-inserted last: the newest survives trimming
            entries[key] = value
            self._dirty = True

    def save(self) -> None:
        """Write the entries back when something changed; never fails (a cache that
        cannot be written only costs time on the next run)."""
        if not self._dirty or self.path is None or self._entries is None:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = dict(list(entries.items())[-MAX_ENTRIES:])
        try:
            _write(self.path, {"format": FORMAT, "entries": entries})
            self._entries = entries
        except (OSError, TypeError, ValueError):
            return
        _remember(self.path, entries)
        self._dirty = False


#: per file, its status when this process last read (or wrote) it and its entries: the
#: several ResultCaches of one plan read and check the file once
_known: dict[Path, tuple[tuple[int, ...], dict[str, Any]]] = {}


def _status(path: Path) -> tuple[int, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_dev)


def _read_once(path: Path) -> dict[str, Any]:
    """The entries of `path` (a copy: callers add to it), read again only when the file's
    status changed since this process read or wrote it."""
    status = _status(path)
    known = _known.get(path)
    if status is not None and known is not None and known[0] == status:
        return dict(known[1])
    entries = _read(path)
    if status is not None and status == _status(path):
        _known[path] = (status, dict(entries))
    return entries


def _remember(path: Path, entries: dict[str, Any]) -> None:
    status = _status(path)
    if status is not None:
        _known[path] = (status, dict(entries))


def _checksum(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _read(path: Path) -> dict[str, Any]:
    document = _read_document(path)
    entries = document.get("entries") if document else None
    return entries if isinstance(entries, dict) else {}


def _read_document(path: Path) -> dict[str, Any] | None:
    """The file's document when it is whole: this format, and its checksum matches (a
    value changed by hand or by a bad disk reads as no file)."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):  # missing, unreadable, truncated, garbage (UnicodeError too)
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    body = {k: v for k, v in document.items() if k != "sha256"}
    if document.get("sha256") != _checksum(body):
        return None
    return document


def _write(path: Path, document: dict[str, Any]) -> None:
    document = {**document, "sha256": _checksum(document)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        # json.dumps, not json.dump: dump streams through the pure-Python encoder, 10x slower
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def code_identity() -> str:
    """The sha256 of the status (path, size, mtime, inode, ctime) of every file of the
    installed `migrate` package and of the Python version: a key that includes it is
    voided by any change to the code (an upgrade, an edit of a source checkout)."""
    global _code_identity
    if _code_identity is None:
        import sys

        root = Path(__file__).resolve().parent.parent
        found: list[Any] = [sys.version]
        pending = [root]
        while pending:
            directory = pending.pop()
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name == "__pycache__":
                        continue
                    st = entry.stat()
                    if entry.is_dir():
                        pending.append(Path(entry.path))
                    found.append(
                        [entry.path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
                    )
        found[1:] = sorted(found[1:])
        _code_identity = hashlib.sha256(json.dumps(found).encode()).hexdigest()
    return _code_identity


_code_identity: str | None = None


def load_value(directory: Path | None, identity: str) -> Any:
    """A value `save_value` kept under `identity` (a string that says everything the
    value depends on), or None: not kept, or its file is not whole."""
    if directory is None:
        return None
    document = _read_document(directory / _value_file(identity))
    if document is None or document.get("identity") != identity:
        return None
    return document.get("value")


def save_value(directory: Path | None, identity: str, value: Any) -> None:
    """Keep a JSON value (e.g. a schema derived from a large YAML file) under
    `identity`, in a file of its own; never fails."""
    if directory is None:
        return
    try:
        _write(
            directory / _value_file(identity),
            {"format": FORMAT, "identity": identity, "value": value},
        )
    except (OSError, TypeError, ValueError):
        return


def _value_file(identity: str) -> str:
    return f"value-{hashlib.sha256(identity.encode()).hexdigest()[:32]}.json"


def jinja_bytecode_cache(environment: str, directory: Path | None = None) -> Any:
    """A Jinja2 bytecode cache under the cache directory (`jinja-<environment>/`), or
    None when the cache is off: templates are compiled once, not on every `plan`.

    Jinja keys each file by the template's name and path, and checks the source's
    checksum and the Jinja/Python magic before using it; it does not look at the
    Environment's options (finalize, autoescape), which shape the code, so each kind of
    Environment names its own directory. Anything it cannot read, or a directory it
    cannot write, means the template is compiled again, never an error.
    """
    if directory is None:
        directory = default_dir()
    if directory is None:
        return None
    from jinja2.bccache import Bucket, FileSystemBytecodeCache

    class _Forgiving(FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, ValueError, EOFError, TypeError):
                bucket.reset()

        def dump_bytecode(self, bucket: Bucket) -> None:
            try:
                Path(self.directory).mkdir(parents=True, exist_ok=True)
                super().dump_bytecode(bucket)
            except (OSError, ValueError):
                return

    return _Forgiving(str(directory / f"jinja-{environment}"))
