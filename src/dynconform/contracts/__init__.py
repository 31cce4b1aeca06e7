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

from dynconform.contracts._catalog import (
    FAMILIES,
    OUTPUT_FAMILIES,
    SCHEMA_BASE,
    Catalog,
    Contract,
    Dispatch,
    UnknownContractError,
)
from dynconform.contracts._io import FORMATS, InputError, json_view, read_input, read_instances
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
from dynconform.contracts._validate import Validator, json_pointer, resolve_pointer
from dynconform.contracts.export import export_contracts
from dynconform.contracts.fast import FastValidator, ReplaySummary, replay
from dynconform.contracts.rules import default_rules

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
    "default_rules",
    "export_contracts",
    "json_pointer",
    "json_view",
    "read_input",
    "read_instances",
    "record_rule",
    "replay",
    "resolve_pointer",
    "stream_rule",
    "watched",
]
