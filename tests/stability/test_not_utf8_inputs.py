"""A file that is not UTF-8 text is one line, "FILE: not UTF-8 text (byte N)", never a
traceback: in every loader of snapshots, tiers, waivers, schemas and CRDs, and on the CLI."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from dynconform.cli import main
from dynconform.contracts import InputError
from dynconform.stability import (
    Snapshot,
    collect_crds,
    load_schema_set,
    load_surfaces,
    load_tiers,
    load_waivers,
)

#: binary noise that fails to decode at byte 0 (0x89, as in a PNG header), then at random
NOISE = b"\x89" + random.Random(0).randbytes(500)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


LOADERS: dict[str, tuple[str, bytes, Callable[[Path], object]]] = {
    # name: (file name, content, load)
    "api snapshot": ("api.json", NOISE, Snapshot.read),
    "tiers": ("tiers.yaml", NOISE, lambda p: load_tiers(str(p))),
    "waivers": ("waivers.yaml", NOISE, load_waivers),
    "schema": ("schema.json", NOISE, lambda p: load_schema_set(str(p))),
    # looks like a surface snapshot in its first bytes, then is not text
    "surface snapshot": (
        "surfaces.json",
        b'{"kind": "SurfaceSnapshot", "x": "\xff"}',
        lambda p: load_surfaces(str(p)),
    ),
    "crd in a tree": ("tree/crds/x.yaml", NOISE, lambda p: collect_crds([p.parent.parent])),
}


@pytest.mark.parametrize("name", LOADERS)
def test_loaders_name_the_file_that_is_not_text(name: str, tmp_path: Path) -> None:
    file, data, load = LOADERS[name]
    path = _write(tmp_path / file, data)
    with pytest.raises(InputError) as info:
        load(path)
    byte = data.index(b"\xff") if data.startswith(b"{") else 0
    assert str(info.value) == f"{path}: not UTF-8 text (byte {byte})"


COMMANDS = {
    "api snapshot": ["api", "snapshot", "{bad}"],
    "api check --baseline": ["api", "check", "--baseline", "{bad}", "{tmp}"],
    "api diff": ["api", "diff", "{bad}", "{bad}"],
    "api --tiers": ["api", "diff", "--tiers", "{bad}", "{tmp}", "{tmp}"],
    "api --waivers": ["api", "check", "--baseline", "{bad}", "--waivers", "{bad}", "{tmp}"],
    "contracts compat": ["contracts", "compat", "{bad}", "builtin"],
    "compat --waivers": ["contracts", "compat", "builtin", "builtin", "--waivers", "{bad}"],
    "surfaces snapshot (CRD YAML)": ["surfaces", "snapshot", "{bad_yaml}"],
    "surfaces diff --waivers": ["surfaces", "diff", "{tmp}", "{tmp}", "--waivers", "{bad}"],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_cli_says_not_utf8_in_one_line_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path / "rand.bin", NOISE)
    bad_yaml = _write(tmp_path / "rand.yaml", NOISE)
    argv = [a.format(bad=bad, bad_yaml=bad_yaml, tmp=tmp_path / "src") for a in COMMANDS[name]]
    code = main(argv)
    err = capsys.readouterr().err
    target = bad_yaml if "{bad_yaml}" in COMMANDS[name] else bad
    assert (code, err) == (2, f"dynconform: error: {target}: not UTF-8 text (byte 0)\n")


def test_a_file_that_is_no_source_says_what_a_source_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rand.bin"
    path.write_bytes(random.Random(1).randbytes(300))
    assert main(["surfaces", "snapshot", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"dynconform: error: {path}: not a wheel (.whl), a source directory, "
        "pypi:NAME==VERSION or git:REF\n"
    )
