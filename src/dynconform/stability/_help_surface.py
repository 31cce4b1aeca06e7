"""CLI options from a component's ``--help``: what static reading cannot see.

Custom argparse actions and options added at run time (1.6.1's frontend adds
``--no-enforce-disagg`` through a custom action) only show up when the parser is built.
``run_help`` runs ``PYTHON -m COMPONENT --help`` in a provisioned interpreter (in its own
process group, killed on timeout), ``parse_help`` reads argparse's help layout into
options, and ``merge_help`` adds what the static snapshot lacks with origin ``help``:
unknown options as new ones, unknown spellings of known options as aliases.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from fnmatch import fnmatchcase

from dynconform.contracts import InputError
from dynconform.stability._markers import tier_from_tag
from dynconform.stability._model import Tier
from dynconform.stability._surfaces import CliOption

_OPTION_LINE = re.compile(r"^ {1,4}(-\S.*)$")
_NAME = re.compile(r"^--?[A-Za-z0-9?][\w.-]*$")
_ENV = re.compile(r"\benv var:\s*(DYN_[A-Z0-9_]+)")
_DEFAULT = re.compile(r"(?:\|\s*|\(|^)default:\s*([^|)]*?)\s*(?:\)|\||$)")
_TRAILER = re.compile(r"\s*env var:\s*\S+(?:\s*\|\s*default:.*)?$")
_SKIP = frozenset({"-h", "--help"})


def _split_invocation(line: str) -> tuple[str, str]:
    """``--a A, -b A   help`` -> (``--a A, -b A``, ``help``)."""
    parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _option(invocation: str, text: str, component: str) -> CliOption | None:
    names: list[str] = []
    choices: tuple[str, ...] | None = None
    takes_value = False
    for part in invocation.split(", "):
        head, _, metavar = part.strip().partition(" ")
        if not _NAME.match(head):
            return None
        names.append(head)
        if metavar:
            takes_value = True
            if metavar.startswith("{") and metavar.endswith("}"):
                choices = tuple(metavar[1:-1].split(","))
    if not names or set(names) <= _SKIP:
        return None
    names.sort(key=lambda n: (not n.startswith("--"), n.startswith("--no-")))
    help_text = " ".join(text.split())
    env = _ENV.search(help_text)
    default = _DEFAULT.search(help_text)
    boolean = any(f"--no-{n[2:]}" in names for n in names if n.startswith("--"))
    tier = tier_from_tag(help_text) or Tier.STABLE
    return CliOption(
        name=names[0],
        aliases=tuple(dict.fromkeys(names[1:])),
        choices=choices,
        default=default.group(1).strip() if default else None,
        env=env.group(1) if env else None,
        action="BooleanOptionalAction" if boolean and not takes_value else None,
        help=_TRAILER.sub("", help_text),
        tier=tier,
        deprecated="deprecated" in help_text.lower(),
        location=f"help:{component}",
        origin="help",
    )


def parse_help(text: str, component: str = "") -> dict[str, CliOption]:
    """Options of an argparse ``--help`` text, keyed by primary name."""
    out: dict[str, CliOption] = {}
    current: tuple[str, list[str]] | None = None
    in_usage = False

    def flush() -> None:
        if current is not None:
            opt = _option(current[0], " ".join(current[1]), component)
            if opt is not None:
                out.setdefault(opt.name, opt)

    for line in text.splitlines():
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage:
            in_usage = bool(line.strip())
            continue
        if not line.strip():
            continue
        m = _OPTION_LINE.match(line)
        if m:
            flush()
            invocation, rest = _split_invocation(m.group(1))
            current = (invocation, [rest])
        elif line.startswith(" ") and current is not None:
            current[1].append(line.strip())
        else:
            flush()
            current = None
    flush()
    return out


def run_help(python: str, component: str, timeout: float = 120.0) -> str:
    """The ``--help`` output of ``python -m component`` (an InputError if it fails)."""
    env = dict(os.environ)
    env.update({"COLUMNS": "400", "NO_COLOR": "1", "PYTHON_COLORS": "0", "TERM": "dumb"})
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    with tempfile.TemporaryDirectory(prefix="dynconform-help-") as cwd:
        try:
            proc = subprocess.Popen(
                [python, "-m", component, "--help"],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise InputError(f"--help-from {python}: cannot run it ({exc.strerror})") from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise InputError(f"{component} --help: no answer within {timeout:g}s") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = out.decode("utf-8", errors="replace")
    if proc.returncode != 0 or "usage:" not in text:
        last = (err.decode("utf-8", errors="replace").strip().splitlines() or ["no output"])[-1]
        raise InputError(f"{component} --help exited {proc.returncode}: {last}")
    return text


def merge_help(
    static: Mapping[str, CliOption], found: Mapping[str, CliOption]
) -> dict[str, CliOption]:
    """The static options plus what only ``--help`` shows (see the module docstring)."""
    merged = dict(static)
    by_name = {n: opt for opt in static.values() for n in opt.names}
    patterns = [n for opt in static.values() for n in opt.names if "*" in n]
    for opt in found.values():
        twin = next((by_name[n] for n in opt.names if n in by_name), None)
        if twin is not None:
            extra = [n for n in opt.names if n not in twin.names]
            if extra:
                wider = replace(twin, aliases=(*twin.aliases, *extra), origin="source+help")
                merged[twin.name] = wider
                for n in wider.names:
                    by_name[n] = wider
            continue
        if all(any(fnmatchcase(n, p) for p in patterns) for n in opt.names):
            continue
        merged[opt.name] = opt
        for n in opt.names:
            by_name[n] = opt
    return merged


def help_options(
    python: str, components: Iterable[str], timeout: float = 120.0
) -> tuple[dict[str, dict[str, CliOption]], list[str]]:
    """Parsed ``--help`` of each component, and one message per component that failed."""
    if shutil.which(python) is None:
        raise InputError(f"--help-from {python}: no such interpreter (or not executable)")
    found: dict[str, dict[str, CliOption]] = {}
    problems: list[str] = []
    for comp in components:
        try:
            found[comp] = parse_help(run_help(python, comp, timeout), comp)
        except InputError as exc:
            problems.append(str(exc))
    return found, problems
