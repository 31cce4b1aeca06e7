"""Reports for the HTML writer's tests, with hostile text wherever the system under test
or a package under review can put text."""

from __future__ import annotations

import random
from typing import Any

from dynconform.reports import (
    CheckResult,
    ConformanceReport,
    Implementation,
    Measurement,
    StabilityFinding,
    StabilityReport,
    StabilityStep,
    StabilityWaiver,
)

#: shown as text, never run: each would set ``window.__pwned`` or open an alert if it ran
HOSTILE_MODEL = "<script>alert(1)</script>"
HOSTILE_REASON = "</script><script>window.__pwned = 'reason'</script><!--"
HOSTILE_TITLE = "<img src=x onerror=\"window.__pwned = 'title'\">"
HOSTILE_NAME = 'ai-dynamo"><svg onload="window.__pwned = \'name\'">'
HOSTILE_PATH = "dynamo.llm.<iframe srcdoc='<script>parent.__pwned=1</script>'>"
HOSTILE_SERIES = "http.<b onmouseover=alert(2)>chat</b>.ttft"
HOSTILE_STRINGS = (
    HOSTILE_MODEL,
    HOSTILE_REASON,
    HOSTILE_TITLE,
    HOSTILE_NAME,
    HOSTILE_PATH,
    HOSTILE_SERIES,
)

PROFILES = ("core", "streaming", "kv-routing")


def _check(check_id: str, status: Any, profiles: tuple[str, ...], **kw: Any) -> CheckResult:
    return CheckResult(
        id=check_id,
        title=str(kw.pop("title", f"{check_id} behaves")),
        status=status,
        profiles=profiles,
        **kw,
    )


def conformance_report(*, hostile: bool = True) -> ConformanceReport:
    """Eight checks over three profiles: 4 passed, 2 failed (one a recommendation), a known
    deviation, 1 error, 1 skipped; two latency series."""
    model = HOSTILE_MODEL if hostile else "tiny-model"
    checks = [
        _check("http.models.list", "passed", ("core", "kv-routing"), duration=0.05),
        _check("http.models.owner", "passed", ("core",), duration=0.04),
        _check("http.stream.done-terminator", "passed", ("streaming",), duration=0.3),
        _check("events.kv.stored", "passed", ("kv-routing",), level="extended"),
        _check(
            "http.chat.basic",
            "failed",
            ("core", "streaming"),
            title=HOSTILE_TITLE if hostile else "chat answers",
            reason=(HOSTILE_REASON if hostile else "500 from the frontend") + f" for model {model}",
            contracts=("http.chat-completion",),
            rules=("schema.required",),
            violations=(
                {
                    "contract": "http.chat-completion",
                    "rule": "schema.required",
                    "pointer": "/choices",
                    "message": f"'choices' is a required property of {model}",
                },
            ),
            reproduce="dynconform run --backend reference --check http.chat.basic --seed 7",
        ),
        _check(
            "metrics.names",
            "failed",
            ("core",),
            severity="recommended",
            reason="dynamo_frontend_requests_total missing",
        ),
        _check(
            "events.kv.sequence",
            "error",
            ("kv-routing",),
            level="extended",
            features=("kv-events",),
            reason="ConnectionResetError: the event plane went away",
        ),
        _check(
            "health.live",
            "skipped",
            ("core",),
            level="extended",
            features=("health",),
            reason="feature health unsupported",
        ),
        _check(
            "kv.block-size",
            "failed",
            ("kv-routing",),
            reason="block size 16, expected 32",
            known_deviation="ai-dynamo 1.6.1 publishes 16",
        ),
    ]
    rng = random.Random(7)
    ttft = [rng.uniform(5, 40) for _ in range(200)]
    total = [rng.uniform(50, 900) for _ in range(200)]
    measurements = [
        Measurement.of("http.chat.ttft", ttft),
        Measurement.of(HOSTILE_SERIES if hostile else "http.chat.total", total),
        Measurement.of("http.models.total", [rng.uniform(0.5, 3) for _ in range(50)]),
    ]
    return ConformanceReport.build(
        Implementation(
            name=HOSTILE_NAME if hostile else "ai-dynamo",
            version="1.6.1",
            backend="dynamo",
            topology="file",
            details={"model": model, "frontend": "http://127.0.0.1:8000"},
        ),
        checks,
        profiles=PROFILES,
        supported_features=("kv-events",),
        date="2026-11-22T12:00:00Z",
        dynconform_version="0.1.0",
        seed=7,
        duration=12.5,
        timeouts={"ready": 30.0},
        taps={"events": 12, "violations": 0},
        measurements=measurements,
    )


def passing_report() -> ConformanceReport:
    """Every check passed."""
    checks = [
        _check("http.models.list", "passed", ("core",)),
        _check("http.stream.done-terminator", "passed", ("streaming",)),
    ]
    return ConformanceReport.build(
        Implementation("reference", "0.1.0", "reference", "file"),
        checks,
        profiles=("core", "streaming"),
        supported_features=(),
        date="2026-11-22T12:00:00Z",
        dynconform_version="0.1.0",
        seed=1,
    )


def _finding(path: str, tier: str, change: Any, verdict: Any, **kw: Any) -> StabilityFinding:
    kind = {
        "added": "object-added",
        "removed": "object-removed",
        "deprecated": "deprecated",
        "changed": "docstring-changed",
        "breaking": "parameter-removed",
    }[change]
    return StabilityFinding(
        kind=kind,
        path=path,
        tier=tier,
        change=change,
        verdict=verdict,
        message=kw.pop("message", f"{path}: {change}"),
        breaking=change in ("removed", "breaking"),
        **kw,
    )


def stability_report(*, hostile: bool = True) -> StabilityReport:
    """Two release steps; the second breaks a stable function without deprecation."""
    path = HOSTILE_PATH if hostile else "dynamo.llm.KvRouter.route"
    first = StabilityStep(
        "1.5.0",
        "1.5.1",
        findings=(
            _finding("dynamo.llm.new_fn", "stable", "added", "info"),
            _finding("dynamo.planner.x", "experimental", "removed", "reported"),
            _finding("dynamo.runtime.old", "stable", "deprecated", "info"),
        ),
    )
    second = StabilityStep(
        "1.5.1",
        "1.6.1",
        findings=(
            _finding(
                path,
                "stable",
                "breaking",
                "violation",
                message="parameter 'timeout' removed",
                reason="stable: needs a deprecation 2 releases before; none",
            ),
            _finding("dynamo.runtime.old", "stable", "removed", "allowed"),
            _finding(
                "dynamo.common.backend.Engine",
                "beta",
                "removed",
                "waived",
                waiver_reason="moved to dynamo.common.engine",
            ),
            _finding("dynamo.llm.a", "stable", "added", "info"),
            _finding("dynamo.llm.b", "beta", "added", "info"),
            _finding("dynamo._internal.c", "internal", "changed", "info"),
        ),
        waivers=(
            StabilityWaiver(
                "dynamo.common.backend.Engine", "moved", "used", matched=1, expires="2027-01-01"
            ),
            StabilityWaiver("dynamo.llm.gone", "temporary", "expired", expires="2026-01-01"),
        ),
    )
    return StabilityReport(
        package="ai-dynamo",
        from_version="1.5.0",
        to_version="1.6.1",
        steps=(first, second),
        date="2026-11-22T12:00:00Z",
        dynconform_version="0.1.0",
        tiers_origin="bundled ai-dynamo.yaml",
        deprecation_releases={"experimental": None, "beta": 1, "stable": 2},
    )
