"""Machine-checkable contracts for every surface between Dynamo components.

Each contract is a JSON Schema (draft 2020-12) shipped as package data, plus named semantic
rules for what a schema cannot express. Load the catalogue, validate an instance or a stream,
and get structured violations::

    from dynconform.contracts import Validator

    report = Validator().validate("discovery.endpoint", record)
    for violation in report.violations:
        print(violation.rule, violation.pointer, violation.message)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dynconform.contracts._catalog import (
    FAMILIES,
    OUTPUT_FAMILIES,
    SCHEMA_BASE,
    Catalog,
    Contract,
    Dispatch,
    UnknownContractError,
)
from dynconform.contracts._io import (
    FORMATS,
    InputError,
    decode_text,
    json_view,
    read_input,
    read_instances,
    yaml_problem,
)
from dynconform.contracts._model import ValidationReport, Violation
from dynconform.contracts._rules import (
    CorrelationRule,
    Correlator,
    Issue,
    RecordRule,
    Rule,
    RuleRegistry,
    StreamChecker,
    StreamRule,
    correlation_rule,
    record_rule,
    stream_rule,
    watched,
)
from dynconform.contracts._validate import (
    Validator,
    json_pointer,
    json_type,
    most_specific_error,
    resolve_pointer,
)
from dynconform.contracts.export import export_contracts
from dynconform.contracts.rules import default_rules

if TYPE_CHECKING:
    from dynconform.contracts.fast import FastValidator, ReplaySummary, replay

__all__ = [
    "FAMILIES",
    "FORMATS",
    "OUTPUT_FAMILIES",
    "SCHEMA_BASE",
    "Catalog",
    "Contract",
    "CorrelationRule",
    "Correlator",
    "Dispatch",
    "FastValidator",
    "InputError",
    "Issue",
    "RecordRule",
    "ReplaySummary",
    "Rule",
    "RuleRegistry",
    "StreamChecker",
    "StreamRule",
    "UnknownContractError",
    "ValidationReport",
    "Validator",
    "Violation",
    "correlation_rule",
    "decode_text",
    "default_rules",
    "export_contracts",
    "json_pointer",
    "json_type",
    "json_view",
    "most_specific_error",
    "read_input",
    "read_instances",
    "record_rule",
    "replay",
    "resolve_pointer",
    "stream_rule",
    "watched",
    "yaml_problem",
]

#: Names imported on first use: the fast path (msgspec and the schema compiler) is not paid
#: for by commands that do not use it.
_FAST = frozenset({"FastValidator", "ReplaySummary", "replay"})


def __getattr__(name: str) -> Any:
    if name in _FAST:
        from dynconform.contracts import fast

        return getattr(fast, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
