"""A stand-in for the Pulumi engine: a `pulumi` executable that answers like the CLI.

No Pulumi engine or cluster runs in these tests. `install(tmp_path, monkeypatch)`
writes a small script named `pulumi` first on PATH. The Automation API runs it
exactly as it would run the real CLI; the script records each call (arguments,
working directory, the passphrase variables) in `calls.jsonl`, keeps the stacks
it was told to make in `state.json` (config, outputs, history, a deployment),
answers in the CLI's JSON shapes, and fails when a test scripts a failure in
`fail.json`. It does not run the inline program (it never connects back to the
language host), so what the program declares is tested under Pulumi's mocks
(test_infra_program.py), and what a stack exports is what a test seeds.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCRIPT = r"""
import json, os, sys
from datetime import datetime, timezone

HOME = os.environ["PULUMI_STANDIN_DIR"]
STATE = os.path.join(HOME, "state.json")
FAIL = os.path.join(HOME, "fail.json")
VERSION = os.environ.get("PULUMI_STANDIN_VERSION", "3.200.0")

def load(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default

def save(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=1)

argv = sys.argv[1:]
env = {k: os.environ.get(k) for k in (
    "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_AUTOMATION_API")}
with open(os.path.join(HOME, "calls.jsonl"), "a") as f:
    f.write(json.dumps({"argv": argv, "cwd": os.getcwd(), "env": env}) + "\n")

args = [a for a in argv if a != "--non-interactive"]
value = None
if "--" in args:
    value = args[args.index("--") + 1]
    args = args[: args.index("--")]
stack = None
if "--stack" in args:
    i = args.index("--stack")
    stack = args[i + 1]
    del args[i : i + 2]
state = load(STATE, {"stacks": {}})
now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

def fail(message, code=255):
    sys.stderr.write(message + "\n")
    sys.exit(code)

def scripted(verb):
    failures = load(FAIL, {})
    plan = failures.get(verb)
    if not plan:
        return
    if plan.get("after", 0) > 0:
        plan["after"] -= 1
        save(FAIL, failures)
        return
    plan["times"] = plan.get("times", 1) - 1
    if plan["times"] <= 0:
        failures.pop(verb)
    save(FAIL, failures)
    sys.stdout.write(plan.get("stdout", "") + "\n")
    fail(plan["stderr"], plan.get("code", 255))

def passphrase():
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:  # lookup-env: set (even empty) wins
        return os.environ["PULUMI_CONFIG_PASSPHRASE"]
    path = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        with open(path) as f:
            return f.read().rstrip("\n")
    fail("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
         "PULUMI_CONFIG_PASSPHRASE_FILE environment variables")

def the_stack():
    if stack not in state["stacks"]:
        fail(f"error: no stack named '{stack}' found")
    data = state["stacks"][stack]
    if data["secrets"] == "passphrase" and passphrase() != data["passphrase"]:
        fail("error: incorrect passphrase")
    return data

def changes(data, verb):
    counts = {"create": len(data["resources"])} if verb == "update" else {}
    data["history"].insert(0, {"kind": verb, "startTime": now, "endTime": now, "message": "",
        "environment": {}, "config": {}, "result": "succeeded", "resourceChanges": counts})

def event_log():
    if "--event-log" in args:
        path = args[args.index("--event-log") + 1]
        with open(path, "a") as f:
            f.write(json.dumps({"sequence": 1, "timestamp": 0, "summaryEvent": {
                "maybeCorrupt": False, "durationSeconds": 0,
                "resourceChanges": {"same": 2, "create": 1}, "PolicyPacks": {}}}) + "\n")

cmd = args[0] if args else ""
if cmd == "version":
    print("v" + VERSION)
elif args[:2] == ["stack", "select"]:
    the_stack()
elif args[:2] == ["stack", "init"]:
    name = args[2]
    if name in state["stacks"]:
        fail(f"error: stack '{name}' already exists")
    provider = "passphrase"
    if "--secrets-provider" in args:
        provider = args[args.index("--secrets-provider") + 1]
    state["stacks"][name] = {"secrets": provider, "config": {}, "outputs": {}, "history": [],
        "resources": [], "locked": False,
        "passphrase": passphrase() if provider == "passphrase" else None}
elif cmd == "config" and len(args) > 1 and args[1] == "set":
    data = the_stack()
    data["config"][args[2]] = {"value": value, "secret": "--secret" in args}
elif cmd == "config":
    print(json.dumps(the_stack()["config"]))
elif args[:2] == ["stack", "output"]:
    outputs = the_stack()["outputs"]
    print(json.dumps(outputs))
elif args[:2] == ["stack", "history"]:
    print(json.dumps(the_stack()["history"][:1]))
elif args[:2] == ["stack", "export"]:
    data = the_stack()
    print(json.dumps({"version": 3, "deployment": {"resources": data["resources"]}}))
elif cmd in ("up", "preview", "refresh", "destroy"):
    data = the_stack()
    if data["locked"]:
        fail(f"error: the stack is currently locked by 1 lock(s). Either wait for the other "
             f"process(es) to end or delete the lock file with `pulumi cancel`.")
    scripted(cmd)
    event_log()
    if cmd == "up":
        data["resources"] = [{"urn": f"urn:pulumi:{stack}::x::n{i}"} for i in range(3)]
        seeded = load(os.path.join(HOME, "program_outputs.json"), None)
        if seeded is not None:
            data["outputs"] = seeded
        changes(data, "update")
    elif cmd == "destroy":
        data["resources"] = []
        data["outputs"] = {}
        changes(data, "destroy")
    elif cmd == "refresh":
        changes(data, "refresh")
    print(f"{cmd} of {stack}: done")
elif cmd == "cancel":
    data = the_stack()
    data["locked"] = False
    print(f"The currently running update for '{stack}' has been canceled!")
else:
    fail(f"stand-in: unknown command {argv}", 2)
save(STATE, state)
"""


@dataclass
class StandIn:
    """The recorded calls and the state of the stand-in engine."""

    home: Path

    def calls(self) -> list[dict[str, Any]]:
        path = self.home / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def commands(self) -> list[str]:
        """Each call as `verb words`, without flags' values: `stack init`, `up`, ..."""
        result = []
        for call in self.calls():
            words = [a for a in call["argv"] if not a.startswith("-")][:2]
            if words and words[0] not in ("stack", "config"):
                words = words[:1]
            result.append(" ".join(words))
        return result

    def argvs(self, verb: str) -> list[list[str]]:
        """The arguments of every call of `verb` (its first word: up, refresh, config)."""
        return [
            c["argv"]
            for c in self.calls()
            if [a for a in c["argv"] if not a.startswith("-")][:1] == [verb]
        ]

    def state(self) -> dict[str, Any]:
        path = self.home / "state.json"
        return json.loads(path.read_text()) if path.exists() else {"stacks": {}}

    def edit_state(self, change: Any) -> None:
        state = self.state()
        change(state)
        (self.home / "state.json").write_text(json.dumps(state))

    def fail(self, verb: str, stderr: str, *, after: int = 0, times: int = 1) -> None:
        """The next `verb` (after `after` successful ones) fails with `stderr`."""
        path = self.home / "fail.json"
        failures = json.loads(path.read_text()) if path.exists() else {}
        failures[verb] = {"stderr": stderr, "after": after, "times": times}
        path.write_text(json.dumps(failures))

    def exports(self, outputs: dict[str, Any]) -> None:
        """What the program exports on the next `up`s (the stand-in does not run it)."""
        (self.home / "program_outputs.json").write_text(json.dumps(outputs))


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    home = tmp_path / "standin"
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "pulumi"
    script.write_text(f"#!{sys.executable}\n" + SCRIPT)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PULUMI_STANDIN_DIR", str(home))
    monkeypatch.setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    return StandIn(home)


def listening_cluster() -> Iterator[int]:
    """A TCP port that accepts connections, as a cluster's API server would (preflight
    connects to it; nothing is ever sent)."""
    import socket
    import threading

    stop = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.settimeout(0.1)

        def serve() -> None:
            while not stop.is_set():
                try:
                    connection, _ = server.accept()
                except OSError:
                    continue
                connection.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield server.getsockname()[1]
        finally:
            stop.set()
            thread.join()
