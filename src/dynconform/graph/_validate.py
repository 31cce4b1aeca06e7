"""Validate a graph file: the ``deployment.graph`` contract, reported at lines and columns.

The contract's JSON Schema runs first; its semantic rules (unique names, resolving
dependencies, declared secrets, Kubernetes quantities, GPU counts, no literal secrets) run once
the schema passes. Keys given twice are reported as well, wherever they are. Each violation's
JSON pointer is mapped to the YAML node it concerns; an unknown key is reported at the key.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema.exceptions import ValidationError

from dynconform.contracts import Validator, json_pointer, most_specific_error
from dynconform.contracts.rules.deployment import GRAPH
from dynconform.graph._problems import Problem, sort_problems
from dynconform.graph._secrets import Redactor
from dynconform.graph._yaml import GraphDocument

#: Keys the design drafts (or Kubernetes habits) use for a key the graph format spells
#: differently.
_ALIASES = {
    "instances": "replicas",
    "arg": "args",
    "command": "cmd",
    "env": "environment",
    "envs": "environment",
    "nodeSelector": "node_selector",
    "secretEnv": "secret_env",
    "gpus": "gpu",
    "mem": "memory",
}
_MESSAGE_LIMIT = 200


@functools.cache
def _validator() -> Validator:
    return Validator()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _hint(key: str, allowed: list[str], parent: list[Any]) -> str:
    alias = _ALIASES.get(key)
    if alias in allowed:
        return f" (did you mean {alias!r}?)"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if parent and parent[-1] == "run_config":
        return " (engine flags go under run_config.options)"
    return ""


def _schema_problems(doc: GraphDocument, error: ValidationError) -> Iterator[Problem]:
    path = list(error.absolute_path)
    pointer = json_pointer(path)
    instance = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        for key in instance:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            where = doc.position(json_pointer([*path, key]), key=True)
            yield Problem(
                where.line,
                where.column,
                "schema.additionalProperties",
                json_pointer([*path, key]),
                f"unknown key {key!r}{_hint(key, allowed, path)}",
            )
        return
    if error.validator == "pattern" and "propertyNames" in error.absolute_schema_path:
        key_pointer = json_pointer([*path, instance])
        where = doc.position(key_pointer, key=True)
        yield Problem(
            where.line,
            where.column,
            "schema.propertyNames",
            key_pointer,
            f"key {instance!r} does not match {error.validator_value!r}",
        )
        return
    if error.validator == "uniqueItems" and isinstance(instance, list):
        for index, item in enumerate(instance):
            if item in instance[:index]:
                item_pointer = json_pointer([*path, index])
                where = doc.position(item_pointer)
                yield Problem(
                    where.line,
                    where.column,
                    "schema.uniqueItems",
                    item_pointer,
                    f"{item!r} is listed twice",
                )
                return
    if error.validator == "type":
        expected = error.validator_value
        names = [str(t) for t in expected] if isinstance(expected, list) else [str(expected)]
        message = f"expected {' or '.join(names)}, got {_kind(instance)}"
    else:
        message = error.message
        if len(message) > _MESSAGE_LIMIT:
            message = message[: _MESSAGE_LIMIT - 3] + "..."
    where = doc.position(pointer)
    yield Problem(where.line, where.column, f"schema.{error.validator}", pointer, message)


def validate_graph(doc: GraphDocument) -> list[Problem]:
    """Every problem of a graph, in file order; an empty list means valid.

    Secret values (see :class:`Redactor`) never appear in the messages.
    """
    validator = _validator()
    problems: list[Problem] = []
    for dup in doc.duplicates:
        problems.append(
            Problem(
                dup.again.line,
                dup.again.column,
                "yaml.duplicate-key",
                dup.pointer,
                f"duplicate key {dup.key!r} (first at line {dup.first.line}, column "
                f"{dup.first.column}); only the last one is kept",
            )
        )
    errors = list(validator.catalog.validator(GRAPH).iter_errors(doc.data))
    for error in errors:
        problems.extend(_schema_problems(doc, most_specific_error(error)))
    if not errors:
        for violation in validator.validate(GRAPH, doc.data).violations:
            where = doc.position(violation.pointer)
            problems.append(
                Problem(
                    where.line, where.column, violation.rule, violation.pointer, violation.message
                )
            )
    return redact(problems, Redactor(doc.data))


def redact(problems: list[Problem], redactor: Redactor) -> list[Problem]:
    """The problems in file order, with secret values masked in their messages."""
    if redactor:
        problems = [
            Problem(p.line, p.column, p.rule, p.pointer, redactor(p.message)) for p in problems
        ]
    return sort_problems(problems)
