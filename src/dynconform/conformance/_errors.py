"""Exceptions that carry a check's outcome, and the runner's environment errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["CheckFailed", "CheckSkipped", "SutError"]


class CheckFailed(AssertionError):
    """The system under test broke what the check demands; the message says how.

    ``violations`` are the contract violations behind the failure (``Violation.to_dict()``).
    """

    def __init__(self, message: str, violations: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.violations = tuple(violations)


class CheckSkipped(Exception):
    """The check cannot run against this system (a feature or a precondition is missing)."""


class SutError(RuntimeError):
    """The system under test could not be provisioned, started or reached; one-line message."""
