"""Findings: one API change each, with its tier and, once the policy ran, its status."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dynconform.stability._kinds import KINDS
from dynconform.stability._model import Tier


class Status(enum.StrEnum):
    """What the policy made of a finding."""

    VIOLATION = "violation"  # fails the check
    ALLOWED = "allowed"  # breaking, but deprecated long enough before
    WAIVED = "waived"  # breaking, covered by a waiver
    REPORTED = "reported"  # breaking in a tier that promises nothing (experimental, internal)
    WARNING = "warning"  # worth a look, never fails
    INFO = "info"  # additions and other compatible changes
    PENDING = "pending"  # not yet judged


@dataclass(frozen=True, slots=True)
class Finding:
    """One API change between two snapshots."""

    kind: str
    path: str
    tier: Tier
    message: str
    old: str | None = None
    new: str | None = None
    location: str | None = None
    subject: str | None = None
    status: Status = Status.PENDING
    reason: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def breaking(self) -> bool:
        return KINDS[self.kind].breaking

    @property
    def display_path(self) -> str:
        return f"{self.path}({self.subject})" if self.subject else self.path

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "path": self.path,
            "tier": self.tier.value,
            "breaking": self.breaking,
            "status": self.status.value,
            "message": self.message,
        }
        for key in ("subject", "old", "new", "location"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.reason:
            out["reason"] = self.reason
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out

    @property
    def paths(self) -> tuple[str, ...]:
        """The object's path and the other public paths of the same object."""
        return (self.path, *self.aliases)

    def sort_key(self) -> tuple[int, str, str, str]:
        return (-self.tier.rank, self.kind, self.path, self.subject or "")


def value_changes(
    old: Sequence[str] | None, new: Sequence[str] | None, noun: str, whole: str | None = None
) -> tuple[list[str], list[str]]:
    """Messages for a list of accepted values (aliases, choices, labels, enum values): what
    narrows it (values removed) and what widens it (values added). ``None`` accepts anything:
    becoming restricted narrows, dropping the restriction widens (``whole`` names the list
    in those messages; default ``noun``)."""
    whole = whole or noun
    if old is None:
        return ([] if new is None else [f"{whole} now restricted to {', '.join(new)}"]), []
    if new is None:
        return [], [f"{whole} no longer restricted"]
    removed = [v for v in old if v not in new]
    added = [v for v in new if v not in old]
    narrowed = [f"{noun} removed: {', '.join(removed)}"] if removed else []
    return narrowed, [f"{noun} added: {', '.join(added)}"] if added else []


def parent_path(path: str) -> str:
    """The path that holds ``path``: ``a.b`` -> ``a``, a list's items ``a.b[]`` -> ``a.b``,
    ``a`` -> ``""``."""
    return path[:-2] if path.endswith("[]") else path.rpartition(".")[0]
