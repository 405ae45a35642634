"""How generated pipelines and dev files install migrate (`ci.install` in migrate.yaml).

Every generated workflow, GitLab pipeline and dev container installs exactly the
migrate that generated it: by default `migrate-k8s-roadmap[k8s]==<this version>`
(`DISTRIBUTION`; the PyPI name `migrate` is an unrelated tool). A project that
installs from elsewhere says so with `ci.install`: pip arguments such as
`--index-url https://pypi.example.com/simple migrate-k8s-roadmap[k8s]==0.1.0` or a
wheel's URL. A bare name is refused: a requirement must pin (`==`/`===`), be a
direct reference (`NAME @ URL`), or be a URL or path of a wheel or sdist.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

DEFAULT_EXTRAS = "k8s"  # `migrate ci` validates manifests and previews through Pulumi

# pip options that take a value (the value is not a requirement)
_OPTIONS_WITH_VALUE = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "--trusted-host",
        "-c",
        "--constraint",
        "-r",
        "--requirement",
        "--cert",
        "--client-cert",
        "--proxy",
        "--timeout",
        "--retries",
    }
)
# pip options that would make the install something else than "this migrate, as named"
_REFUSED_OPTIONS = frozenset({"-U", "--upgrade", "-e", "--editable", "--pre"})
_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?\s*===?\s*[^\s,;<>=!~*]+$")
_DIRECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?\s*@\s*\S+$")
_ARCHIVE = re.compile(r"\.(whl|tar\.gz|zip)(#\S*)?$")


@dataclass(frozen=True)
class Install:
    """What the generated files run: `pip install ARGS`."""

    args: tuple[str, ...]

    @property
    def command(self) -> str:
        """The shell command, every argument quoted."""
        return shlex.join(["pip", "install", *self.args])

    @property
    def argv(self) -> list[str]:
        """The command as an argument vector (no shell)."""
        return ["pip", "install", *self.args]


def default_requirement() -> str:
    """`migrate-k8s-roadmap[k8s]==VERSION`: the migrate that runs now."""
    from migrate import DISTRIBUTION, UNKNOWN_VERSION, installed_version

    version = installed_version()
    if version == UNKNOWN_VERSION:
        from migrate.errors import UserError

        raise UserError(
            f"this migrate is not installed as the {DISTRIBUTION} distribution, so there is no "
            "version for the generated pipelines to pin",
            hint=f"install it (pip install -e .), or set ci.install in migrate.yaml to a pinned "
            f"requirement such as '{DISTRIBUTION}[{DEFAULT_EXTRAS}]==0.1.0'",
        )
    return f"{DISTRIBUTION}[{DEFAULT_EXTRAS}]=={version}"


def parse(value: str) -> tuple[str, ...]:
    """`ci.install` as pip arguments; a ValueError says what is wrong with it."""
    try:
        args = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"cannot split {value!r} into arguments: {exc}") from None
    args = _direct_references(args)
    requirements = 0
    expect_value = False
    for arg in args:
        if expect_value:
            expect_value = False
            continue
        option = arg.split("=", 1)[0]
        if option in _REFUSED_OPTIONS:
            raise ValueError(f"{arg!r} is not allowed: the pipelines install one pinned migrate")
        if arg.startswith("-"):
            if option in ("-r", "--requirement"):
                requirements += 1
            expect_value = option in _OPTIONS_WITH_VALUE and "=" not in arg
            continue
        if not (_PINNED.match(arg) or _DIRECT.match(arg) or _ARCHIVE.search(arg)):
            raise ValueError(
                f"{arg!r} is not pinned: write NAME==VERSION (e.g. "
                f"'migrate-k8s-roadmap[{DEFAULT_EXTRAS}]==0.1.0'), NAME @ URL, or a wheel's URL"
            )
        requirements += 1
    if expect_value:
        raise ValueError(f"{args[-1]!r} needs a value")
    if requirements == 0:
        raise ValueError("it names nothing to install: add the pinned requirement of migrate")
    return tuple(args)


def _direct_references(args: list[str]) -> list[str]:
    """`NAME @ URL` written unquoted is three words: one requirement."""
    merged: list[str] = []
    for arg in args:
        if len(merged) >= 2 and merged[-1] == "@" and not merged[-2].startswith("-"):
            merged[-2:] = [f"{merged[-2]} @ {arg}"]
        else:
            merged.append(arg)
    return merged


def install(configured: str | None) -> Install:
    """What the generated files install: `ci.install`, else the pinned default."""
    return Install(parse(configured) if configured else (default_requirement(),))
