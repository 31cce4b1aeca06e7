"""``DYN_*`` names read by compiled extension modules (the Rust runtime's ``_core*.so``).

Nothing is loaded or run: the binary is scanned for ``DYN_[A-Z0-9_]+`` byte strings. Rust
stores string literals back to back without separators, so a raw match can run into the
next literal; the scan splits and trims such matches:

- at every further ``DYN_`` (``DYN_ADYN_B`` is two names);
- a trailing capital that starts the next literal's word (``DYN_MODEDeclare an ...``) is
  dropped when the capitalised word is more common as a word start than the bare rest
  (``DYN_X_BYTESevent ...`` keeps its ``S``);
- a glued upper-case word (``DYN_ENABLE_RLCLI flags``) is cut back to a name that also
  occurs on its own, and a name glued to the tail of another (``DYN_ROUTE_TO_ENCODER`` +
  ``ENABLE_RL`` of ``DYN_ENABLE_RL``) is cut at the seam;
- 8-byte-aligned fragments of longer names (inlined comparisons) are dropped.

A name ending in ``_`` is a prefix the code completes at run time; it is kept as
``DYN_X_*``. A name followed by ``is deprecated`` in the binary is reported deprecated.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

NATIVE_INDEX = ".dynconform-native.json"
"""Per-tree index of the names found in its extension modules (written at extraction)."""
EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib")

_TOKEN = re.compile(rb"DYN_[A-Z0-9_]+")
_SPLIT = re.compile(rb"(?=DYN_)")
_LOWER = re.compile(rb"[a-z]+")
_DEPRECATED = re.compile(rb"^[\s`'\"]*(?:is|are) deprecated", re.IGNORECASE)
_IDENT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_PAD = 1 << 20


def is_extension(name: str) -> bool:
    """Whether a file name is a compiled extension module (``_core.abi3.so``, ``x.pyd``)."""
    base = name.rsplit("/", 1)[-1]
    return base.endswith(EXTENSION_SUFFIXES) or ".so." in base


@dataclass(slots=True)
class NativeNames:
    """The ``DYN_*`` names of one binary."""

    names: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        out = {"names": self.names}
        if self.deprecated:
            out["deprecated"] = self.deprecated
        return out


class _Region:
    """Word-start counts within the part of the binary that holds the names."""

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data = data[max(0, start - _PAD) : end + _PAD]
        self.cache: dict[bytes, int] = {}

    def word_starts(self, word: bytes, limit: int = 64) -> int:
        """How often ``word`` starts a word (up to ``limit``)."""
        if word not in self.cache:
            count, i = 0, self.data.find(word)
            while i != -1 and count < limit:
                if i == 0 or self.data[i - 1] not in _IDENT:
                    count += 1
                i = self.data.find(word, i + 1)
            self.cache[word] = count
        return self.cache[word]


def _glued(after: bytes) -> bool:
    return bool(after) and after[0] in _IDENT


def _trim_capital(
    name: str, after: bytes, confirmed: set[str], seen: set[str], region: _Region
) -> str:
    """``DYN_MODED`` + ``eclare`` -> ``DYN_MODE`` when the capital starts the next word."""
    if name in confirmed or not name[-1].isupper():
        return name
    if name[:-1] in confirmed or name[:-1] in seen:
        return name[:-1]
    match = _LOWER.match(after)
    run = match.group() if match else b""
    if not run:
        return name
    nxt = after[len(run) : len(run) + 1]
    word = run[:6] + (nxt if len(run) < 6 and nxt == b" " else b"")
    capital = name[-1].encode() + word
    with_cap, bare = region.word_starts(capital), region.word_starts(word)
    if with_cap > bare or (with_cap == bare == 0 and nxt in (b" ", b"", b".", b",", b":")):
        return name[:-1]
    return name


def _cut_glued(name: str, confirmed: set[str], region: _Region) -> str:
    """``DYN_ENABLE_RLCLI`` -> ``DYN_ENABLE_RL`` when the shorter name stands alone."""
    heads = sorted(
        (
            p
            for p in confirmed
            if len(p) < len(name)
            and name.startswith(p)
            and not p.endswith("_")
            and name[len(p)] != "_"
        ),
        key=len,
        reverse=True,
    )
    for head in heads:
        rest = name[len(head) :]
        if (
            ("_" not in rest and len(rest) >= 2)
            or rest[0].isdigit()
            or (len(rest) >= 4 and region.word_starts(rest.encode(), 1))
        ):
            return head
    return name


def _extends(ordered: list[str], prefix: str, other_than: str) -> bool:
    """Whether a name other than ``other_than`` starts with ``prefix``."""
    i = bisect.bisect_left(ordered, prefix)
    while i < len(ordered) and ordered[i].startswith(prefix):
        if ordered[i] != other_than:
            return True
        i += 1
    return False


def _unglue(names: set[str]) -> dict[str, str]:
    """Names that are another name's head glued to a second name's tail.

    ``DYN_ROUTE_TO_ENCODERENABLE_RL`` -> ``DYN_ROUTE_TO_ENCODER`` because ``DYN_`` +
    ``ENABLE_RL`` is a name too; likewise a tail that completes a sibling with the same
    prefix (``DYN_SIDECAR_`` + ``GRPC_...``). Then an upper-case word glued to such a head
    (``...SECSCLI``) is cut. Cuts only fall inside a segment, never at an ``_``.
    """
    out: dict[str, str] = {}
    implied: set[str] = set()
    current = set(names)
    for _ in range(3):
        ordered = sorted(current)
        found: dict[str, str] = {}
        for name in ordered:
            for i in range(5, len(name) - 3):
                if name[i] == "_" or name[i - 1] == "_" or "_" not in name[i:]:
                    continue
                head, rest = name[:i], name[i:]
                bases = ["DYN_"] + [head[: j + 1] for j in range(4, len(head)) if head[j] == "_"]
                match = next((b for b in bases if _extends(ordered, b + rest, name)), None)
                if match is not None:
                    found[name] = head
                    implied.add(match + rest)
                    break
        if not found:
            break
        out.update(found)
        current = (current - set(found)) | set(found.values())
    heads = set(out.values()) | implied
    for name in sorted(current):
        for head in heads:
            rest = name[len(head) :]
            if name.startswith(head) and rest and "_" not in rest and len(rest) >= 2:
                out[name] = head
                break
    resolved: dict[str, str] = {}
    for name in out:
        head = out[name]
        while head in out:
            head = out[head]
        resolved[name] = head
    return resolved


def scan_binary(data: bytes) -> NativeNames:
    """The ``DYN_*`` names in a compiled binary (see the module docstring)."""
    pieces: list[tuple[str, bytes]] = []
    first = last = -1
    for m in _TOKEN.finditer(data):
        first = m.start() if first < 0 else first
        last = m.end()
        parts = [p for p in _SPLIT.split(m.group()) if p]
        for i, part in enumerate(parts):
            after = b"" if i < len(parts) - 1 else data[m.end() : m.end() + 48]
            pieces.append((part.decode("ascii"), after))
    if not pieces:
        return NativeNames()
    region = _Region(data, first, last)
    seen = {n for n, _ in pieces}
    fragments = {
        n
        for n in seen
        if len(n) % 8 == 0
        and any(len(o) > len(n) + 1 and o.startswith(n) and o[len(n)] != "_" for o in seen)
    }
    confirmed = {n for n, a in pieces if not _glued(a)} - fragments
    named: dict[str, bool] = {}
    for piece, after in pieces:
        name = piece
        if after[:1].islower():
            name = _trim_capital(name, after, confirmed, seen, region)
        name = _cut_glued(name, confirmed, region)
        tail = piece[len(name) :].encode() + after
        named[name] = named.get(name, False) or bool(_DEPRECATED.match(tail))
    names = set(named)
    for glued, head in _unglue(names).items():
        named[head] = named.get(head, False) or named.pop(glued)
    names = set(named)
    out = sorted(
        {n + "*" if n.endswith("_") else n for n in names - fragments if n.rstrip("_") != "DYN"}
    )
    deprecated = sorted(n for n, d in named.items() if d and n in out)
    return NativeNames(out, deprecated)


def scan_file(path: Path) -> NativeNames:
    return scan_binary(path.read_bytes())


def write_index(dest: Path, found: Mapping[str, NativeNames]) -> None:
    """Write (merge into) the tree's native index: ``{file: {names, deprecated}}``."""
    index = read_index(dest)
    index.update(found)
    data = {k: v.to_dict() for k, v in sorted(index.items())}
    (dest / NATIVE_INDEX).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def read_index(root: Path) -> dict[str, NativeNames]:
    path = root / NATIVE_INDEX
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): NativeNames(list(v.get("names", [])), list(v.get("deprecated", [])))
        for k, v in data.items()
        if isinstance(v, dict)
    }


def scan_tree(root: Path, package: str) -> dict[str, NativeNames]:
    """Names in the extension modules found under ``root/package`` (installed trees)."""
    base = root / package
    out: dict[str, NativeNames] = {}
    if base.is_dir():
        for path in sorted(base.rglob("*")):
            if path.is_file() and is_extension(path.name):
                out[str(path.relative_to(root))] = scan_file(path)
    return out


def native_names(roots: Iterable[Path], package: str) -> dict[str, NativeNames]:
    """The index of each root, else a scan of its extension modules."""
    out: dict[str, NativeNames] = {}
    for root in roots:
        index = read_index(root)
        found = index or scan_tree(root, package)
        out.update({k: v for k, v in found.items() if k.startswith(package + "/")})
    return out
