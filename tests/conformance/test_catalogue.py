from __future__ import annotations

from pathlib import Path

import pytest

from dynconform.conformance import (
    FEATURES,
    PROFILES,
    Check,
    CheckFailed,
    CheckRegistry,
    RunConfig,
    Timeouts,
    apply_expectations,
    bundled_expectations,
    check,
    default_checks,
    eventually,
    load_expectations,
    make_launcher,
)
from dynconform.conformance._provision import filter_requirements
from dynconform.contracts import Catalog, InputError, default_rules, watched
from dynconform.reports import CheckResult

CHECKS = default_checks()
#: Contracts whose instances the taps and checks validate in bulk: every rule watching them
#: must be enforced by some check, or its violations would go unreported.
JUDGED = (
    "discovery.entry",
    "discovery.record",
    "discovery.endpoint",
    "discovery.model",
    "discovery.mdc",
    "discovery.event-channel",
    "discovery.event-source",
    "events.message",
    "events.envelope",
    "events.kv-events",
    "events.kv-metrics",
    "events.forward-pass-metrics",
    "events.active-sequences",
    "request-plane.frame",
    "http.sse-stream",
    "http.chat-completion",
    "http.completion",
    "http.error",
    "health.frontend",
    "health.worker",
    "metrics.frontend-exposition",
    "metrics.worker-exposition",
)


def test_catalogue_is_explicit_and_well_formed() -> None:
    assert len(CHECKS) >= 40
    assert len(set(CHECKS.ids())) == len(CHECKS)
    assert set(PROFILES) == {p for c in CHECKS for p in c.profiles}
    names = set(Catalog.load().names())
    for item in CHECKS:
        assert set(item.contracts) <= names, item.id
        assert item.rules, item.id
        assert item.level == ("extended" if item.features else "core")


#: Behaviours a check judges itself, without a contract rule or a check of that ID.
OWN_RULES = {
    "http.stream.data-lines-only": "http.stream.content-type",
    "http.usage.totals": "http.usage.max-tokens",
}


def test_named_rules_exist_or_are_the_checks_own() -> None:
    known = {r.id for r in default_rules()} | {"decode"}
    own = set(CHECKS.ids())
    for item in CHECKS:
        for rule in item.rules:
            if rule == "schema.*":
                assert item.contracts, item.id
                continue
            assert rule in known or rule in own or OWN_RULES.get(item.id) == rule, (item.id, rule)
    for check_id, rule in OWN_RULES.items():
        assert rule in CHECKS.get(check_id).rules, (check_id, rule)


@pytest.mark.parametrize("contract", JUDGED)
def test_every_rule_of_judged_contracts_is_enforced(contract: str) -> None:
    for rule in default_rules().for_contract(contract):
        assert contract in watched(rule)
        assert CHECKS.enforcing(contract, rule.id), f"no check enforces {rule.id} ({contract})"
    assert CHECKS.enforcing(contract, "schema.required"), f"no check enforces {contract}'s schema"


def test_registry_selection_and_errors() -> None:
    core = CHECKS.select(["core"])
    assert core
    assert all("core" in c.profiles for c in core)
    phases = [c.phase for c in CHECKS]
    assert phases == sorted(phases, key=("traffic", "observe", "destructive").index)
    assert [c.id for c in CHECKS.select(None, ["http.chat.valid"])] == ["http.chat.valid"]
    with pytest.raises(KeyError, match="unknown check"):
        CHECKS.select(None, ["no.such-check"])
    with pytest.raises(ValueError, match="duplicate"):
        CheckRegistry([CHECKS.get("http.chat.valid"), CHECKS.get("http.chat.valid")])
    assert CHECKS.enforcing("http.sse-stream", "http.sse.done-terminator") == [
        CHECKS.get("http.stream.done-terminator")
    ]
    schema_owners = {c.id for c in CHECKS.enforcing("http.models", "schema.const")}
    assert schema_owners == {"http.models.lists-registered", "fuzz.http-api"}


def _noop(ctx: object) -> None:
    return None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"check_id": "Bad_ID"}, "kebab-case"),
        ({"description": "it should work"}, "RFC 2119"),
        ({"profiles": ()}, "no profile"),
        ({"profiles": ("nope",)}, "unknown profile"),
        ({"features": ("nope",)}, "unknown feature"),
    ],
)
def test_check_record_validation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "check_id": "x.y",
        "title": "t",
        "description": "It MUST work.",
        "profiles": ("core",),
    }
    args.update(kwargs)
    check_id = str(args.pop("check_id"))
    with pytest.raises(ValueError, match=message):
        check(check_id, **args)(_noop)  # type: ignore[arg-type]


def test_features_are_documented() -> None:
    used = {f for c in CHECKS for f in c.features}
    assert used <= set(FEATURES)
    assert isinstance(CHECKS.get("kv.stored.hash-matches-prompt"), Check)


def test_timeouts_parse_and_override() -> None:
    timeouts = Timeouts.parse(["request=5", "consistency=0.5"])
    assert timeouts.request == 5.0
    assert timeouts.consistency == 0.5
    assert timeouts.startup == 120.0
    assert timeouts.as_dict()["request"] == 5.0
    for bad, message in (
        ("request", "NAME=SECONDS"),
        ("nope=1", "unknown timeout"),
        ("request=x", "not a number"),
        ("request=0", "positive"),
    ):
        with pytest.raises(ValueError, match=message):
            Timeouts.parse([bad])


def test_the_shutdown_timeout_reaches_the_launcher() -> None:
    launcher = make_launcher(RunConfig(timeouts=Timeouts({"shutdown": 3})))
    assert getattr(launcher, "shutdown", None) == 3


def test_eventually_polls_until_the_window_closes() -> None:
    calls: list[int] = []

    def probe() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise CheckFailed("not yet")
        return len(calls)

    assert eventually(probe, within=5, what="ready", interval=0.001) == 3

    def never() -> None:
        raise CheckFailed("still broken", [{"rule": "r"}])

    with pytest.raises(CheckFailed, match=r"ready within 0.05 s: still broken") as info:
        eventually(never, within=0.05, what="ready", interval=0.01)
    assert info.value.violations == ({"rule": "r"},)


def test_expectations_apply(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(
        "apiVersion: dynconform.dev/v1alpha1\nkind: ConformanceExpectations\n"
        "implementation: x\ndeviations:\n"
        "- {check: a.fails, reason: known, topologies: [file]}\n"
        "- {check: a.passes, reason: fixed upstream}\n"
    )
    expectations = load_expectations(path)
    results = [
        CheckResult("a.fails", "A", "failed", ("core",), reason="bad"),
        CheckResult("a.passes", "B", "passed", ("core",)),
        CheckResult("a.other", "C", "failed", ("core",)),
    ]
    on_file = apply_expectations(results, expectations, "file")
    assert on_file[0].known_deviation == "known"
    assert not on_file[0].blocking
    assert "not observed" in on_file[1].reason
    assert on_file[2].blocking
    on_etcd = apply_expectations(results, expectations, "etcd-nats")
    assert on_etcd[0].known_deviation is None
    path.write_text("kind: Other\n")
    with pytest.raises(InputError, match="ConformanceExpectations"):
        load_expectations(path)


@pytest.mark.parametrize("name", ["reference", "ai-dynamo-1.6.1"])
def test_bundled_expectations_name_known_checks(name: str) -> None:
    expectations = bundled_expectations(name)
    assert expectations is not None
    assert expectations.deviations
    for deviation in expectations.deviations:
        assert deviation.check in CHECKS, deviation.check
        assert deviation.reason


def test_requirements_of_the_wheels_are_filtered() -> None:
    listed = [
        "ai-dynamo-runtime==1.6.1",
        "aiohttp<4.0,>=3.14.3",
        "aisimulate==0.13.0",
        "certifi>=2026.10.19",
        "pyzmq>=26.0.0",
        "pyzmq>=26.0.0",
    ]
    assert filter_requirements(listed) == ["aiohttp<4.0,>=3.14.3", "certifi", "pyzmq>=26.0.0"]


def test_the_documentation_lists_every_check() -> None:
    text = (Path(__file__).parents[2] / "docs" / "conformance.md").read_text()
    missing = [c for c in CHECKS.ids() if f"`{c}`" not in text]
    assert not missing, f"docs/conformance.md does not list {missing}"
