"""The contract catalogue: JSON Schemas shipped as package data, resolved offline."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: Every schema's ``$id`` starts with this; the rest is ``{family}/{name}.v{major}.json``.
SCHEMA_BASE = "https://dynconform.dev/schemas/"

#: The contract families, in the order they are listed.
FAMILIES: tuple[str, ...] = (
    "discovery",
    "events",
    "health",
    "metrics",
    "http",
    "request-plane",
    "deployment",
    "report",
)

#: Families that describe dynconform's own outputs rather than Dynamo's formats: no ai-dynamo
#: capture backs them; their examples come from real dynconform runs.
OUTPUT_FAMILIES: tuple[str, ...] = ("report",)


class UnknownContractError(LookupError):
    """Raised for a contract name that the catalogue does not hold."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        super().__init__(f"unknown contract {name!r}{hint}; see 'dynconform contracts list'")
        self.name = name


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Validate a nested value against another contract chosen by a key of the instance.

    Declared in a schema as ``x-dynconform.dispatch`` with ``pointer`` (where the nested value
    lives), ``key`` (a pointer to the selector) and ``contracts`` (selector -> contract name);
    the optional ``default`` names the contract for instances that have no selector at all.
    """

    pointer: str
    key: str
    contracts: Mapping[str, str]
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Contract:
    """One named contract: a JSON Schema plus the metadata dynconform keeps beside it."""

    name: str
    family: str
    version: str
    schema_id: str
    title: str
    description: str
    schema: Mapping[str, Any]
    resource: str
    backed_by: tuple[str, ...]
    dispatch: Dispatch | None
    decoder: str | None = None

    @property
    def is_stream_item_array(self) -> bool:
        """Whether one instance of this contract is itself a JSON array."""
        return self.schema.get("type") == "array"


def _iter_schema_files() -> Iterator[tuple[str, dict[str, Any]]]:
    root = resources.files("dynconform.contracts") / "schemas"
    for family_dir in sorted(root.iterdir(), key=lambda p: p.name):
        if not family_dir.is_dir():
            continue
        for entry in sorted(family_dir.iterdir(), key=lambda p: p.name):
            if entry.name.endswith(".json"):
                rel = f"schemas/{family_dir.name}/{entry.name}"
                yield rel, json.loads(entry.read_text(encoding="utf-8"))


def _contract_from(resource: str, schema: dict[str, Any]) -> Contract:
    meta = schema.get("x-dynconform")
    if not isinstance(meta, dict):
        raise ValueError(f"{resource}: missing x-dynconform metadata")
    raw_dispatch = meta.get("dispatch")
    dispatch = (
        Dispatch(
            pointer=raw_dispatch["pointer"],
            key=raw_dispatch["key"],
            contracts=dict(raw_dispatch["contracts"]),
            default=raw_dispatch.get("default"),
        )
        if raw_dispatch
        else None
    )
    return Contract(
        name=meta["name"],
        family=meta["family"],
        version=meta["version"],
        schema_id=schema["$id"],
        title=str(schema.get("title", meta["name"])),
        description=str(schema.get("description", "")),
        schema=schema,
        resource=resource,
        backed_by=tuple(meta.get("backed_by", ())),
        dispatch=dispatch,
        decoder=meta.get("decoder"),
    )


class Catalog:
    """All contracts that ship with dynconform, with an offline ``referencing`` registry."""

    def __init__(self, contracts: list[Contract]) -> None:
        self._by_name: dict[str, Contract] = {}
        for contract in contracts:
            if contract.name in self._by_name:
                raise ValueError(f"duplicate contract name {contract.name!r}")
            self._by_name[contract.name] = contract
        self._validators: dict[str, Draft202012Validator] = {}

    @classmethod
    def load(cls) -> Catalog:
        """Load the bundled schemas (package data)."""
        return cls([_contract_from(res, schema) for res, schema in _iter_schema_files()])

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Contract]:
        order = {family: i for i, family in enumerate(FAMILIES)}
        yield from sorted(
            self._by_name.values(), key=lambda c: (order.get(c.family, len(order)), c.name)
        )

    def names(self) -> list[str]:
        return [c.name for c in self]

    def families(self) -> dict[str, list[Contract]]:
        out: dict[str, list[Contract]] = {}
        for contract in self:
            out.setdefault(contract.family, []).append(contract)
        return out

    def get(self, name: str) -> Contract:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownContractError(name, list(self._by_name)) from None

    def by_id(self, schema_id: str) -> Contract:
        for contract in self._by_name.values():
            if contract.schema_id == schema_id:
                return contract
        raise UnknownContractError(schema_id, [c.schema_id for c in self._by_name.values()])

    @cached_property
    def registry(self) -> Registry[Any]:
        """A ``referencing`` registry holding every schema under its ``$id``; never fetches."""
        resources_ = [
            (c.schema_id, Resource.from_contents(dict(c.schema), default_specification=DRAFT202012))
            for c in self._by_name.values()
        ]
        return Registry().with_resources(resources_).crawl()

    def validator(self, name: str) -> Draft202012Validator:
        """A cached draft 2020-12 validator for the named contract."""
        cached = self._validators.get(name)
        if cached is None:
            contract = self.get(name)
            cached = Draft202012Validator(
                dict(contract.schema),
                registry=self.registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
            self._validators[name] = cached
        return cached
