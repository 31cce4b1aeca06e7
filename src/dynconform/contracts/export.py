"""Language-neutral copies of the contracts for consumers outside Python."""

from __future__ import annotations

import json
from pathlib import Path

from dynconform.contracts._catalog import Catalog
from dynconform.contracts.rules import default_rules

__all__ = ["export_contracts"]


def export_contracts(directory: Path, catalog: Catalog | None = None) -> list[Path]:
    """Write every schema, the OpenAPI document and a rule index under ``directory``.

    Layout: ``{family}/{name}.json`` per contract, ``openapi.json``, ``index.json`` (contract
    names, ``$id``s, versions, files and rule IDs).
    """
    catalog = catalog if catalog is not None else Catalog.load()
    rules = default_rules()
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = []
    for contract in catalog:
        target = directory / contract.family / f"{contract.name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(contract.schema, indent=2) + "\n", encoding="utf-8")
        written.append(target)
        index.append(
            {
                "name": contract.name,
                "family": contract.family,
                "version": contract.version,
                "id": contract.schema_id,
                "file": f"{contract.family}/{contract.name}.json",
                "rules": [
                    {"id": r.id, "kind": r.kind, "summary": r.summary}
                    for r in rules.for_contract(contract.name)
                ],
            }
        )
    from dynconform.contracts.openapi import openapi_document

    openapi = directory / "openapi.json"
    openapi.write_text(json.dumps(openapi_document(catalog), indent=2) + "\n", encoding="utf-8")
    written.append(openapi)
    index_path = directory / "index.json"
    index_path.write_text(json.dumps({"contracts": index}, indent=2) + "\n", encoding="utf-8")
    written.append(index_path)
    return written
