"""The bundled real captures: each validates against its contract; every family is covered."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynconform.cli import main
from dynconform.contracts import FAMILIES, OUTPUT_FAMILIES, Catalog, Validator, export_contracts
from dynconform.contracts.samples import iter_samples

SAMPLES = list(iter_samples())
CATALOG = Catalog.load()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_bundled_sample_validates(sample) -> None:  # type: ignore[no-untyped-def]
    validator = Validator(CATALOG)
    report = (
        validator.validate_stream(sample.contract, sample.instances)
        if sample.stream
        else validator.validate(sample.contract, sample.instances[0])
    )
    assert report.ok, [str(v) for v in report.violations[:5]]


def test_every_family_has_contracts_and_a_bundled_sample() -> None:
    assert set(CATALOG.families()) == set(FAMILIES)
    sampled = {CATALOG.get(s.contract).family for s in SAMPLES}
    # the samples are ai-dynamo captures; dynconform's own reports have none
    assert sampled == set(FAMILIES) - set(OUTPUT_FAMILIES)


def test_contracts_list_shows_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "list"]) == 0
    out = capsys.readouterr().out
    for family in FAMILIES:
        assert f"\n{family} (" in "\n" + out


def test_verify_command_passes_on_bundled_captures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "verify"]) == 0
    assert "all valid" in capsys.readouterr().out


def test_export_writes_every_schema_and_a_self_contained_openapi(tmp_path: Path) -> None:
    written = export_contracts(tmp_path / "out")
    names = {p.name for p in written}
    for contract in CATALOG:
        assert f"{contract.name}.json" in names
    assert "openapi.json" in names
    assert "index.json" in names
    assert "dynconform.dev" not in (tmp_path / "out" / "openapi.json").read_text()
