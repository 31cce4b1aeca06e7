"""What graph validation and rendering report: a problem at a line and column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a graph file, at the node it concerns.

    ``rule`` is ``yaml.duplicate-key``, ``schema.<keyword>``, a ``deployment.*`` rule of the
    ``deployment.graph`` contract, or a ``k8s.*`` check of the Kubernetes renderer.
    ``pointer`` is the RFC 6901 pointer of the node in the data.
    """

    line: int
    column: int
    rule: str
    pointer: str
    message: str

    def format(self, file: str) -> str:
        """``FILE:LINE:COL: rule: message``, the form compilers and editors understand."""
        return f"{file}:{self.line}:{self.column}: {self.rule}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "pointer": self.pointer,
            "message": self.message,
        }


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """In file order; problems at one node by rule."""
    return sorted(problems, key=lambda p: (p.line, p.column, p.rule, p.message))
