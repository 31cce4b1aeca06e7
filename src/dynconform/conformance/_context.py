"""What a check function receives: the system under test, clients, taps and helpers."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from dynconform.conformance._check import Check
from dynconform.conformance._discovery_tap import DiscoveryTap
from dynconform.conformance._errors import CheckFailed, CheckSkipped
from dynconform.conformance._event_tap import EventTap
from dynconform.conformance._http import HttpClient
from dynconform.conformance._latency import LatencyLog
from dynconform.conformance._sut import Sut
from dynconform.conformance._timeouts import Timeouts, eventually
from dynconform.contracts import ValidationReport, Validator, Violation

__all__ = ["Context", "Shared"]

T = TypeVar("T")

#: Violations named in a failure message; all of them are kept in the result.
SHOWN = 3
KEPT = 20


class Shared:
    """State shared by the checks of one run: a validator, memoised observations, prompts."""

    def __init__(self, validator: Validator | None = None) -> None:
        self.validator = validator if validator is not None else Validator()
        self.memo: dict[str, Any] = {}
        #: token-id prompts sent during the run, with the model they went to
        self.token_prompts: list[tuple[str, list[int]]] = []
        #: latencies of the frontend's responses, for the report's measurements
        self.latencies = LatencyLog()


class Context:
    """Handed to every check function; one per check execution."""

    def __init__(
        self,
        check: Check,
        sut: Sut,
        *,
        timeouts: Timeouts,
        seed: int,
        shared: Shared,
        discovery: DiscoveryTap | None = None,
        events: EventTap | None = None,
    ) -> None:
        self.check = check
        self.sut = sut
        self.timeouts = timeouts
        self.seed = seed
        self.shared = shared
        self.discovery = discovery
        self.events = events
        #: seeded per check, so a check's inputs do not depend on which others ran
        self.rng = random.Random(f"{seed}:{check.id}")
        self.http = HttpClient(
            sut.frontend_url, timeout=timeouts.request, on_response=shared.latencies.record
        )

    @property
    def validator(self) -> Validator:
        return self.shared.validator

    # -- preconditions ------------------------------------------------------------------------

    def require(self, feature: str) -> None:
        if feature not in self.sut.features:
            raise CheckSkipped(f"the backend does not declare feature {feature!r}")

    def require_discovery(self) -> DiscoveryTap:
        if self.discovery is None:
            raise CheckSkipped("no discovery store to observe (give --discovery)")
        return self.discovery

    def require_events(self) -> EventTap:
        if self.events is None:
            raise CheckSkipped("no event plane to observe (give --event-plane)")
        return self.events

    def worker_clients(self) -> list[HttpClient]:
        """Clients for the workers' system servers; skips when none is reachable."""
        urls = [w.system_url for w in self.sut.workers if w.system_url]
        if not urls:
            raise CheckSkipped("no worker system server URL (give --worker-url)")
        return [HttpClient(url, timeout=self.timeouts.request) for url in urls]

    # -- shared observations ------------------------------------------------------------------

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per run for ``key``; later calls get the same value."""
        if key not in self.shared.memo:
            self.shared.memo[key] = compute()
        value: T = self.shared.memo[key]
        return value

    def model(self) -> str:
        """The served model: the configured one, else the first listed by ``/v1/models``."""
        if self.sut.model:
            return self.sut.model

        def first_listed() -> str:
            data = self.http.get("/v1/models").json()
            models = data.get("data") if isinstance(data, dict) else None
            if not models or not isinstance(models[0], dict) or "id" not in models[0]:
                raise CheckFailed(f"/v1/models lists no model: {data!r}"[:300])
            return str(models[0]["id"])

        return self.memo("model", first_listed)

    def cards(self) -> list[dict[str, Any]]:
        """The model deployment cards registered in discovery now."""
        if self.discovery is None:
            return []
        return [
            r["card_json"]
            for r in self.discovery.records("Model")
            if isinstance(r.get("card_json"), dict)
        ]

    def block_size(self) -> int:
        """The KV block size the MDC of the served model advertises."""
        model = self.model()
        sizes = {
            c.get("kv_cache_block_size")
            for c in self.cards()
            if model in (c.get("display_name"), c.get("slug"))
        }
        sizes.discard(None)
        if len(sizes) != 1:
            raise CheckSkipped(f"no single kv_cache_block_size for model {model!r} in discovery")
        size = sizes.pop()
        if not isinstance(size, int) or size <= 0:
            raise CheckFailed(f"kv_cache_block_size is {size!r}")
        return size

    def token_prompt(self, length: int, low: int = 10, high: int = 250) -> list[int]:
        """A seeded random prompt of token ids (recorded for the KV correlation checks)."""
        tokens = [self.rng.randrange(low, high) for _ in range(length)]
        self.shared.token_prompts.append((self.model(), tokens))
        return tokens

    # -- judging ------------------------------------------------------------------------------

    def eventually(self, probe: Callable[[], T], what: str, within: float | None = None) -> T:
        """Poll ``probe`` within the consistency window (or ``within`` seconds)."""
        window = self.timeouts.consistency if within is None else within
        return eventually(probe, within=window, what=what)

    def claimed(self, violations: Iterable[Violation]) -> list[Violation]:
        """The violations this check enforces (others belong to other checks)."""
        return [v for v in violations if self.check.enforces(v.contract, v.rule)]

    def judge(self, report: ValidationReport, what: str) -> None:
        """Fail with the violations of ``report`` that this check enforces."""
        mine = self.claimed(report.violations)
        if mine:
            raise failure(what, mine)

    def expect_valid(self, contract: str, instance: Any, what: str) -> ValidationReport:
        """Validate one instance and :meth:`judge` the result."""
        report = self.validator.validate(contract, instance)
        self.judge(report, what)
        return report


def failure(what: str, violations: list[Violation]) -> CheckFailed:
    """A :class:`CheckFailed` naming the first violations and keeping the first few."""
    shown = "; ".join(str(v) for v in violations[:SHOWN])
    more = f" (and {len(violations) - SHOWN} more)" if len(violations) > SHOWN else ""
    return CheckFailed(
        f"{what}: {len(violations)} violation(s): {shown}{more}",
        [v.to_dict() for v in violations[:KEPT]],
    )
