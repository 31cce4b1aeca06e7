"""Prometheus metrics of the frontend and the workers: syntax, registry, counter behaviour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed
from dynconform.conformance.checks._common import CHAT, chat_body, expect_status, ok_json

EXPOSITIONS = ("metrics.frontend-exposition", "metrics.worker-exposition")
FRONTEND_REQUESTS = "dynamo_frontend_requests"  # parsed name of ..._requests_total
WORKER_REQUESTS = "dynamo_component_requests"


@dataclass(frozen=True, slots=True)
class Scrape:
    """One exposition: where from, which contract describes it, and its text."""

    source: str
    contract: str
    text: str


def scrape_all(ctx: Context) -> list[Scrape]:
    """The frontend's and every reachable worker's /metrics, now."""
    response = ctx.http.get("/metrics")
    expect_status(response, 200)
    out = [Scrape("frontend /metrics", "metrics.frontend-exposition", response.text)]
    urls = [w.system_url for w in ctx.sut.workers if w.system_url]
    if "worker-system-server" in ctx.sut.features:
        for client in ctx.worker_clients() if urls else []:
            got = client.get("/metrics")
            expect_status(got, 200)
            out.append(Scrape(f"{client.base_url}/metrics", "metrics.worker-exposition", got.text))
    return out


def _served_scrapes(ctx: Context) -> list[Scrape]:
    """Expositions taken after at least one request was served (once per run)."""

    def take() -> list[Scrape]:
        ok_json(ctx.http.post_json(CHAT, chat_body(ctx)))
        return scrape_all(ctx)

    return ctx.memo("metrics-scrapes", take)


def _judge_expositions(ctx: Context) -> None:
    for scrape in _served_scrapes(ctx):
        ctx.expect_valid(scrape.contract, scrape.text, scrape.source)


def _exposition_check(rules: tuple[str, ...], check_id: str, title: str, description: str) -> Check:
    def run(ctx: Context) -> None:
        _judge_expositions(ctx)

    run.__name__ = check_id.replace(".", "_").replace("-", "_")
    return check(
        check_id,
        title=title,
        description=description,
        profiles=("core",),
        contracts=EXPOSITIONS,
        rules=rules,
    )(run)


exposition_parses = _exposition_check(
    ("schema.*", "metrics.exposition-parses"),
    "metrics.exposition-parses",
    "Expositions parse",
    """The frontend's and the workers' GET /metrics MUST be valid Prometheus text expositions
    (prometheus-client's parser accepts them).""",
)
family_types = _exposition_check(
    ("metrics.family-type",),
    "metrics.family-types",
    "Registry families have their registered type",
    """Every metric family of the registry that an exposition holds MUST have the type the
    registry gives it.""",
)
required_labels = _exposition_check(
    ("metrics.required-labels",),
    "metrics.required-labels",
    "Registry families carry their required labels",
    """Every sample of a registry family MUST carry the labels the registry requires.""",
)
required_families = _exposition_check(
    ("metrics.required-families",),
    "metrics.required-families",
    "Always-present families are present",
    """Once a request was served, the frontend's and workers' expositions MUST hold every
    family the registry marks as always present for their component.""",
)
histograms_cumulative = _exposition_check(
    ("metrics.histogram-cumulative",),
    "metrics.histograms-cumulative",
    "Histogram buckets are cumulative",
    """Histogram buckets MUST be non-decreasing in `le`, and the +Inf bucket MUST equal
    `_count`.""",
)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _monotonic_samples(text: str, where: str) -> Samples:
    """Counter samples and histogram/summary counts, sums and buckets, by name and labels."""
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as exc:
        raise CheckFailed(f"{where}: exposition does not parse: {exc}") from None
    out: Samples = {}
    for family in families:
        if family.type not in ("counter", "histogram", "summary"):
            continue
        for sample in family.samples:
            if family.type == "counter" and sample.name.endswith("_created"):
                continue
            if family.type != "counter" and not sample.name.endswith(("_count", "_sum", "_bucket")):
                continue
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@check(
    "metrics.counters-monotonic",
    title="Counters never decrease",
    description="""Between two scrapes of the same process, no counter sample and no histogram
    or summary count, sum or bucket MAY decrease, and none MAY disappear.""",
    profiles=("core",),
    contracts=EXPOSITIONS,
    rules=("metrics.counters-monotonic", "metrics.exposition-parses"),
)
def counters_monotonic(ctx: Context) -> None:
    before = scrape_all(ctx)
    for _ in range(3):
        ok_json(ctx.http.post_json(CHAT, chat_body(ctx)))
    after = scrape_all(ctx)
    for first, second in zip(before, after, strict=True):
        old = _monotonic_samples(first.text, first.source)
        new = _monotonic_samples(second.text, second.source)
        for key, value in sorted(old.items()):
            if key not in new:
                raise CheckFailed(f"{first.source}: sample {_show(key)} disappeared")
            if new[key] < value:
                raise CheckFailed(
                    f"{first.source}: {_show(key)} decreased from {value:g} to {new[key]:g}"
                )


def _show(key: tuple[str, tuple[tuple[str, str], ...]]) -> str:
    name, labels = key
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


def _total(text: str, family: str, match: Callable[[dict[str, str]], bool]) -> float:
    total = 0.0
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as exc:  # the parser raises ValueError, IndexError, TypeError, ...
        raise CheckFailed(f"an exposition does not parse: {exc}") from None
    for parsed in families:
        if parsed.name != family:
            continue
        for sample in parsed.samples:
            if sample.name == family + "_total" and match(sample.labels):
                total += sample.value
    return total


@check(
    "metrics.requests-total-exact",
    title="requests_total grows by exactly N after N requests",
    description="""After N successful requests and nothing else, the frontend's
    dynamo_frontend_requests_total for the model MUST grow by exactly N, and the workers'
    dynamo_component_requests_total for the generate endpoint MUST grow by exactly N, within
    the consistency window.""",
    profiles=("core",),
    contracts=EXPOSITIONS,
    rules=("metrics.requests-total-exact", "metrics.exposition-parses"),
)
def requests_total_exact(ctx: Context) -> None:
    model = ctx.model()
    counted = [
        (FRONTEND_REQUESTS, lambda labels: labels.get("model") == model),
        (WORKER_REQUESTS, lambda labels: labels.get("dynamo_endpoint") == "generate"),
    ]

    def totals() -> list[float]:
        scrapes = scrape_all(ctx)
        frontend = _total(scrapes[0].text, *counted[0])
        workers = sum(_total(s.text, *counted[1]) for s in scrapes[1:])
        return [frontend, workers] if len(scrapes) > 1 else [frontend]

    # Earlier requests may still be counted in; wait until the totals are stable.
    start = ctx.eventually(_stable(totals), "metrics stable before counting")
    n = ctx.rng.randint(2, 5)
    for _ in range(n):
        ok_json(ctx.http.post_json(CHAT, chat_body(ctx, max_tokens=2)))
    names = ["frontend dynamo_frontend_requests_total", "workers dynamo_component_requests_total"]

    def grown() -> None:
        now = totals()
        for name, low, high in zip(names, start, now, strict=False):
            if high - low != n:
                raise CheckFailed(f"{name} grew by {high - low:g} after {n} requests")

    ctx.eventually(grown, f"request counters grown by {n}")


def _stable(read: Callable[[], list[float]]) -> Callable[[], list[float]]:
    previous: list[list[float]] = []

    def probe() -> list[float]:
        now = read()
        if previous and previous[-1] == now:
            return now
        previous.append(now)
        raise CheckFailed(f"counters still moving: {now}")

    return probe


CHECKS: tuple[Check, ...] = (
    exposition_parses,
    family_types,
    required_labels,
    required_families,
    histograms_cumulative,
    counters_monotonic,
    requests_total_exact,
)
