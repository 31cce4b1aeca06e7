"""Fuzzing the HTTP API with schemathesis against the OpenAPI document of the contracts."""

from __future__ import annotations

import functools
import time
from typing import Any

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed, CheckSkipped

#: Examples per operation and generation mode.
EXAMPLES = 20
#: Generated values are clamped so that every request finishes quickly.
SHORT = {"max_tokens": 4, "max_completion_tokens": 4, "min_tokens": 0, "n": 1, "best_of": 1}
HTTP_CONTRACTS = (
    "http.models",
    "http.chat-completion",
    "http.completion",
    "http.error",
    "http.sse-stream",
    "health.frontend",
    "health.frontend-live",
)


class _Found(Exception):
    """Stops hypothesis at the first failure (the failure itself is already recorded)."""


def _clamp(case: Any, model: str, positive: bool) -> Any:
    body = case.body
    if positive and isinstance(body, dict):
        for key, value in SHORT.items():
            if key in body and isinstance(body[key], int) and not isinstance(body[key], bool):
                body[key] = min(body[key], value)
        if "model" in body:
            body["model"] = model
    return case


@check(
    "fuzz.http-api",
    title="Fuzzed requests never give a 5xx and answers match the contracts",
    description="""Requests generated from the OpenAPI document of the http contracts, valid
    and invalid, MUST NOT be answered with a 5xx status, and every answer MUST match the
    response schema of its status code.""",
    profiles=("fuzz",),
    contracts=HTTP_CONTRACTS,
    rules=("schema.*", "fuzz.http-api"),
)
def http_api(ctx: Context) -> None:
    try:
        import hypothesis
        import schemathesis
        from schemathesis import GenerationMode
        from schemathesis.checks import not_a_server_error
        from schemathesis.specs.openapi.checks import response_schema_conformance
    except ImportError:
        raise CheckSkipped("schemathesis is not installed (pip install schemathesis)") from None
    from dynconform.contracts.openapi import openapi_document

    schema = schemathesis.openapi.from_dict(openapi_document())
    model = ctx.model()
    deadline = time.monotonic() + ctx.timeouts.fuzz
    failures: list[str] = []
    sent = 0

    def exercise(case: Any) -> None:
        nonlocal sent
        if failures:
            raise _Found  # hypothesis replays the failing example: fail the same way
        if time.monotonic() > deadline:
            return
        sent += 1
        response = case.call(base_url=ctx.sut.frontend_url, timeout=ctx.timeouts.request)
        where = f"{case.method} {case.path} -> {response.status_code}"
        kind = response.headers.get("content-type") or ""
        if "text/event-stream" in (kind if isinstance(kind, str) else " ".join(kind)):
            # Streams are the streaming profile's business; here only the status counts.
            if response.status_code >= 500:
                failures.append(f"{where}: server error")
                raise _Found
            return
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        except (Exception, BaseExceptionGroup) as exc:
            first = str(exc).strip().splitlines()
            failures.append(f"{where}: {' '.join(first[:3])[:300]}")
            raise _Found from None

    for result in schema.get_all_operations():
        operation: Any = result.ok()  # type: ignore[union-attr]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if failures or time.monotonic() > deadline:
                break
            positive = mode == GenerationMode.POSITIVE
            try:
                strategy = operation.as_strategy(generation_mode=mode).map(
                    functools.partial(_clamp, model=model, positive=positive)
                )
            except Exception:
                continue  # nothing to negate (e.g. an operation without parameters)

            @hypothesis.seed(ctx.seed)
            @hypothesis.settings(
                max_examples=EXAMPLES,
                database=None,
                deadline=None,
                derandomize=False,
                phases=[hypothesis.Phase.generate],
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            @hypothesis.given(strategy)
            def run(case: Any) -> None:
                exercise(case)

            try:
                run()
            except (_Found, hypothesis.errors.Unsatisfiable):
                continue
    if failures:
        raise CheckFailed(f"{len(failures)} failure(s) in {sent} fuzzed requests: {failures[0]}")
    if not sent:
        raise CheckFailed("no request was generated")


CHECKS: tuple[Check, ...] = (http_api,)
