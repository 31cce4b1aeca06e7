"""``dynconform run`` and ``dynconform checks ...``: the conformance suite."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dynconform.cli._common import COMMANDS, UsageError, help_when_bare, nonempty, path_arg
from dynconform.conformance import (
    BACKENDS,
    DEFAULT_PROFILES,
    DEFAULT_TIMEOUTS,
    FEATURES,
    PROFILES,
    TOPOLOGIES,
    RunConfig,
    Timeouts,
    default_checks,
    plan_lines,
    run_suite,
)
from dynconform.reports import report_json, summary_table

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


def add_run(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help=COMMANDS["run"].summary,
        description=(
            "Start a system under test (or attach to a running one), watch its discovery "
            "store and event plane, run the selected checks and write a versioned report. "
            "Exit 0 every required check passed (known deviations excepted), 1 a check "
            "failed, 2 usage or environment error."
        ),
        epilog=(
            "examples:\n"
            "  dynconform run                      # the reference: core, streaming, kv-routing\n"
            "  dynconform run --backend dynamo --dynamo-version 1.6.1 --report-dir out\n"
            "  dynconform run --backend dynamo --sut-python /venv/bin/python --topology etcd-nats\n"
            "  dynconform run --backend vllm --model-path /models/llama --dry-run\n"
            "  dynconform run --target http://10.0.0.5:8000 --discovery etcd://10.0.0.6:2379 \\\n"
            "      --event-plane nats://10.0.0.7:4222 --worker-url http://10.0.0.8:9090\n"
            "  dynconform run --violate kv.block-hash-chain   # watch a check fail\n"
            f"\nprofiles: {', '.join(PROFILES)} (default: {', '.join(DEFAULT_PROFILES)})\n"
            f"timeouts: {', '.join(f'{k}={v:g}' for k, v in DEFAULT_TIMEOUTS.items())}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sut = p.add_argument_group("system under test")
    sut.add_argument("--backend", choices=BACKENDS, default="reference", help="default: reference")
    sut.add_argument("--topology", choices=TOPOLOGIES, default="file", help="default: file")
    sut.add_argument("--dynamo-version", metavar="VERSION", help="provision ai-dynamo VERSION")
    sut.add_argument(
        "--sut-python", type=nonempty, metavar="PATH", help="a Python with ai-dynamo installed"
    )
    sut.add_argument("--model-path", type=path_arg, metavar="DIR", help="model directory")
    sut.add_argument("--model", metavar="NAME", help="served model name")
    sut.add_argument("--violate", action="append", default=[], metavar="MODE",
                     help="reference only: break a contract rule (see 'dynconform mocker "
                     "violations')")  # fmt: skip
    target = p.add_argument_group("running deployment")
    target.add_argument("--target", metavar="URL", help="frontend URL; nothing is started")
    target.add_argument("--discovery", metavar="URL", help="file:///DIR or etcd://HOST:PORT")
    target.add_argument("--event-plane", metavar="URL", help="zmq, zmq://HOST:PORT,... or nats://")
    target.add_argument("--worker-url", action="append", default=[], metavar="URL",
                        help="a worker's system server (repeatable)")  # fmt: skip
    target.add_argument("--feature", action="append", default=[], metavar="NAME",
                        help=f"declare a feature ({', '.join(FEATURES)})")  # fmt: skip
    run = p.add_argument_group("run")
    run.add_argument("--profile", action="append", default=[], metavar="NAME",
                     help="profile to run (repeatable)")  # fmt: skip
    run.add_argument("--check", action="append", default=[], metavar="ID",
                     help="run only this check (repeatable)")  # fmt: skip
    run.add_argument("--timeout", action="append", default=[], metavar="NAME=SECONDS",
                     help="override a named timeout, e.g. startup=300 (repeatable; names and "
                     "defaults below)")  # fmt: skip
    run.add_argument("--seed", type=int, default=0, help="seed of all random inputs (default 0)")
    run.add_argument(
        "--report-dir",
        type=path_arg,
        metavar="DIR",
        help="write report.yaml, report.json, junit.xml and SUT logs here",
    )
    run.add_argument(
        "--expectations", type=path_arg, metavar="FILE", help="known deviations (YAML)"
    )
    run.add_argument("--dry-run", action="store_true", help="print what would start, then exit")
    run.add_argument("--quiet", action="store_true", help="no live progress")
    run.add_argument("--json", action="store_true", help="print only the report, as JSON")
    p.set_defaults(func=cmd_run)


def _config(args: argparse.Namespace) -> RunConfig:
    try:
        timeouts = Timeouts.parse(args.timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    config = RunConfig(
        backend=args.backend,
        topology=args.topology,
        target=args.target,
        discovery=args.discovery,
        event_plane=args.event_plane,
        worker_urls=tuple(args.worker_url),
        model=args.model,
        model_path=args.model_path,
        dynamo_version=args.dynamo_version,
        sut_python=args.sut_python,
        profiles=tuple(args.profile) or DEFAULT_PROFILES,
        check_ids=tuple(args.check) or None,
        timeouts=timeouts,
        seed=args.seed,
        report_dir=args.report_dir,
        expectations=args.expectations,
        violations=tuple(args.violate),
        features=tuple(args.feature),
    )
    try:
        config.validate()
        if config.check_ids and not default_checks().select(config.profiles, config.check_ids):
            raise ValueError(
                f"--check {', '.join(config.check_ids)}: not in the profiles selected "
                f"({', '.join(config.profiles)}); add --profile for it"
            )
    except (ValueError, KeyError) as exc:
        raise UsageError(str(exc.args[0]) if exc.args else str(exc)) from None
    if config.violations:
        from dynconform.mocker.violations import VIOLATIONS  # the mocker loads slowly

        unknown = [mode for mode in config.violations if mode not in VIOLATIONS]
        if unknown:
            raise UsageError(f"--violate {unknown[0]}: unknown (see dynconform mocker violations)")
    return config


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.dry_run:
        try:
            lines = plan_lines(config)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        sys.stdout.write("\n".join(lines) + "\n")
        return EXIT_OK
    outcome = run_suite(config, progress=not (args.quiet or args.json))
    if outcome.report is not None and outcome.error is None:
        if args.json:
            sys.stdout.write(report_json(outcome.report))
        else:
            sys.stdout.write("\n" + summary_table(outcome.report))
    if outcome.exit_code == EXIT_INTERRUPTED:
        sys.stderr.write("dynconform: interrupted\n")  # as every other command says it
    elif outcome.error is not None:
        sys.stderr.write(f"dynconform: error: {outcome.error}\n")
    return outcome.exit_code


def add_checks(sub: Any) -> None:
    p = sub.add_parser(
        "checks",
        help=COMMANDS["checks"].summary,
        description="List or show the checks of the conformance suite.",
        epilog=(
            "examples:\n"
            "  dynconform checks list\n"
            "  dynconform checks list --profile kv-routing\n"
            "  dynconform checks show kv.block-hash-chain"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    csub = p.add_subparsers(dest="checks_command", metavar="COMMAND", parser_class=type(p))
    ls = csub.add_parser(
        "list",
        help="list checks (ID, profiles, features, title)",
        description="List the checks: ID, profiles, title and the features each one needs.",
        epilog=(
            "examples:\n"
            "  dynconform checks list --profile core --profile streaming\n"
            "  dynconform checks list --json | jq -r '.[] | select(.features == []) | .id'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ls.add_argument("--profile", action="append", default=[], metavar="NAME",
                    help=f"only the checks of this profile (repeatable; one of "
                    f"{', '.join(PROFILES)}; default: all)")  # fmt: skip
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_checks_list)
    show = csub.add_parser(
        "show",
        help="show one check in full",
        description="Show one check: profiles, features, level, contracts, rules and what it does.",
        epilog=(
            "examples:\n"
            "  dynconform checks show http.stream.done-terminator\n"
            "  dynconform checks show kv.block-hash-chain"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("id", help="check ID")
    show.set_defaults(func=cmd_checks_show)
    help_when_bare(p)


def _as_dict(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "description": item.description,
        "profiles": list(item.profiles),
        "features": list(item.features),
        "level": item.level,
        "severity": item.severity,
        "phase": item.phase,
        "contracts": list(item.contracts),
        "rules": list(item.rules),
    }


def cmd_checks_list(args: argparse.Namespace) -> int:
    for profile in args.profile:
        if profile not in PROFILES:
            raise UsageError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    checks = default_checks().select(args.profile or None)
    if args.json:
        sys.stdout.write(json.dumps([_as_dict(c) for c in checks], indent=2) + "\n")
        return EXIT_OK
    width = max(len(c.id) for c in checks) if checks else 10
    for item in checks:
        extra = f" [needs {', '.join(item.features)}]" if item.features else ""
        sys.stdout.write(
            f"{item.id:<{width}}  {','.join(item.profiles):<15}  {item.title}{extra}\n"
        )
    return EXIT_OK


def cmd_checks_show(args: argparse.Namespace) -> int:
    try:
        item = default_checks().get(args.id)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    data = _as_dict(item)
    for key in ("id", "title", "profiles", "features", "level", "severity", "phase",
                "contracts", "rules"):  # fmt: skip
        value = data[key]
        shown = ", ".join(value) if isinstance(value, list) else value
        sys.stdout.write(f"{key + ':':<12} {shown or '-'}\n")
    sys.stdout.write(f"\n{item.description}\n")
    return EXIT_OK
