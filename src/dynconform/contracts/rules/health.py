"""Semantic rules of the health contracts.

The frontend's ``/health`` lists the ``dyn://`` URL of every instance it lists. The worker's
overall status is not derived from its endpoints in 1.6.1 (it stays ``notready`` while every
endpoint is ``ready``), so no rule ties them together.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dynconform.contracts._rules import Issue, Rule, record_rule


def endpoint_url(instance: dict[str, Any]) -> str:
    """The ``dyn://namespace.component.endpoint`` URL of an instance."""
    return f"dyn://{instance['namespace']}.{instance['component']}.{instance['endpoint']}"


@record_rule(
    "health.frontend-endpoints-match-instances",
    contract="health.frontend",
    summary="`endpoints` is the sorted, de-duplicated list of the instances' `dyn://` URLs",
)
def _endpoints_match_instances(body: dict[str, Any]) -> Iterator[Issue]:
    endpoints: list[str] = body["endpoints"]
    expected = sorted({endpoint_url(i) for i in body["instances"]})
    missing = [url for url in expected if url not in endpoints]
    extra = sorted({url for url in endpoints if url not in expected})
    if missing:
        yield "/endpoints", f"instances' endpoints missing from `endpoints`: {', '.join(missing)}"
    if extra:
        yield "/endpoints", f"`endpoints` lists URLs of no instance: {', '.join(extra)}"
    if not missing and not extra and endpoints != expected:
        yield "/endpoints", "`endpoints` is not sorted and de-duplicated"


RULES: tuple[Rule, ...] = (_endpoints_match_instances,)
