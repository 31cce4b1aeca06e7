"""Every bundled schema is a well-formed, documented, versioned contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from dynconform.contracts import FAMILIES, OUTPUT_FAMILIES, SCHEMA_BASE, Catalog, Validator

CATALOG = Catalog.load()
CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ai-dynamo-1.6.1"


def _undocumented(schema: Any, path: str = "") -> Iterator[str]:
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict) or "$ref" in sub:
                continue
            if not sub.get("title") or not sub.get("description"):
                yield f"{path}/properties/{name}"
        for key, value in schema.items():
            if key in ("examples", "default", "const", "enum", "x-dynconform"):
                continue
            yield from _undocumented(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from _undocumented(item, f"{path}/{i}")


@pytest.mark.parametrize("name", CATALOG.names())
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    contract = CATALOG.get(name)
    Draft202012Validator.check_schema(dict(contract.schema))
    assert contract.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert contract.schema_id.startswith(SCHEMA_BASE + contract.family + "/")
    assert contract.family in FAMILIES
    assert contract.version.count(".") == 2


@pytest.mark.parametrize("name", CATALOG.names())
def test_every_property_has_title_and_description(name: str) -> None:
    schema = CATALOG.get(name).schema
    assert schema.get("title")
    assert schema.get("description")
    assert list(_undocumented(schema)) == []


@pytest.mark.parametrize("name", CATALOG.names())
def test_examples_come_from_captures_and_validate(name: str) -> None:
    contract = CATALOG.get(name)
    examples = contract.schema.get("examples")
    assert examples, "every contract carries at least one real example"
    if contract.family in OUTPUT_FAMILIES:
        # dynconform's own reports: examples come from real dynconform runs, not captures
        assert contract.backed_by == ()
    else:
        assert contract.backed_by, "every contract names the captures that back it"
    for source in contract.backed_by:
        # a real capture file (of the 1.6.1 capture set, or another ai-dynamo capture set named
        # by its directory), or (for configuration formats no process emits) a design document
        assert (
            source.startswith("design:")
            or (CAPTURES / source).is_file()
            or (source.startswith("ai-dynamo-") and (CAPTURES.parent / source).is_file())
        ), source
    validator = Validator(CATALOG)
    for example in examples:
        report = validator.validate(name, example)
        assert report.ok, [str(v) for v in report.violations]
