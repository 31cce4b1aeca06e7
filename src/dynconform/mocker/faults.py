"""Faults the reference frontend can inject (``--failure-rate``, ``--failure-types`` and a
request header), shared by the frontend and ``dynconform mocker serve``."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["FAULT_HEADER", "FAULT_TYPES", "check_faults"]

#: A request header that makes the frontend answer with the named fault (see FAULT_TYPES).
FAULT_HEADER = "x-dynconform-fault"
#: Faults the frontend can inject: HTTP status and message of each.
FAULT_TYPES: dict[str, tuple[int, str]] = {
    "429": (429, "Too many requests: the reference is rate limiting (injected fault)"),
    "500": (500, "Internal server error (injected fault)"),
    "503": (503, "Service unavailable (injected fault)"),
    "context_length": (
        400,
        "Validation: the prompt exceeds the model's context length (injected fault)",
    ),
}


def check_faults(rate: float, types: Iterable[str]) -> None:
    """Raise ``ValueError`` (one line) unless ``rate`` is in [0, 1] and every type is known."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"--failure-rate must be between 0 and 1, got {rate}")
    for fault in types:
        if fault not in FAULT_TYPES:
            raise ValueError(f"unknown failure type {fault!r} (known: {', '.join(FAULT_TYPES)})")
