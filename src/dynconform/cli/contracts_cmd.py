"""``dynconform validate`` and ``dynconform contracts ...``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dynconform.cli._common import COMMANDS, help_when_bare, nonempty
from dynconform.contracts import (
    FORMATS,
    Catalog,
    InputError,
    ValidationReport,
    Validator,
    default_rules,
    read_instances,
    watched,
)
from dynconform.contracts.export import export_contracts
from dynconform.contracts.samples import iter_samples

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def add_validate(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help=COMMANDS["validate"].summary,
        description=(
            "Validate PATH against CONTRACT: the JSON Schema first, then the contract's "
            "semantic rules (stream rules across all instances of a JSONL, multi-document "
            "YAML, msgpack or raw capture file). Exit 0 valid, 1 invalid, 2 usage error."
        ),
        epilog=(
            "examples:\n"
            "  dynconform validate events.message capture.bin\n"
            "  dynconform validate discovery.entry etcd_kvs.json --each\n"
            "  dynconform validate events.message nats.jsonl --with discovery.entry kvs.json\n"
            "  curl -s localhost:8000/v1/models | dynconform validate http.models -"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("contract", help="contract name, see 'dynconform contracts list'")
    p.add_argument("path", type=nonempty, help="input file, or - for standard input")
    p.add_argument(
        "--format", choices=FORMATS, help="input format (default: from extension, then content)"
    )
    split = p.add_mutually_exclusive_group()
    split.add_argument(
        "--each",
        dest="each",
        action="store_true",
        default=None,
        help="treat a top-level JSON/YAML array as a stream of instances",
    )
    split.add_argument(
        "--whole",
        dest="each",
        action="store_false",
        help="treat a top-level array as one instance",
    )
    p.add_argument(
        "--with",
        dest="also",
        nargs=2,
        action="append",
        default=[],
        metavar=("CONTRACT", "PATH"),
        help=(
            "validate another file in the same run, so that rules spanning contracts "
            "(e.g. discovery + events) see both; repeatable"
        ),
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--max", type=int, default=20, metavar="N", help="violations to show (default 20)"
    )
    p.set_defaults(func=cmd_validate)


def _as_stream(items: list[Any], stream: bool, each: bool | None, item_is_array: bool) -> bool:
    if stream or len(items) != 1 or not isinstance(items[0], list):
        return stream
    if each is None:
        return not item_is_array
    return each


def _instances(
    validator: Validator, contract: str, path: str, fmt: str | None, each: bool | None
) -> list[Any]:
    target = validator.catalog.get(contract)
    items, stream, _ = read_instances(path, fmt)
    if _as_stream(items, stream, each, target.is_stream_item_array):
        return items[0] if len(items) == 1 and isinstance(items[0], list) else items
    return items


def run_validate(
    contract: str,
    path: str,
    fmt: str | None = None,
    each: bool | None = None,
    also: list[tuple[str, str]] | None = None,
) -> ValidationReport:
    """Validate a file against a contract (library entry point of ``dynconform validate``).

    ``also`` adds ``(contract, path)`` pairs validated in the same run (format auto-detected).
    """
    validator = Validator()
    for other, _ in also or ():
        validator.catalog.get(other)  # unknown names fail before any file is read
    sources = [(contract, _instances(validator, contract, path, fmt, each))]
    sources += [(c, _instances(validator, c, p, None, each)) for c, p in also or ()]
    return validator.validate_many(sources)


def format_report(report: ValidationReport, source: str, limit: int) -> str:
    lines = [
        f"{source}: {report.contract}, {report.instances} instance(s): "
        + ("valid" if report.ok else f"INVALID, {len(report.violations)} violation(s)")
    ]
    if len(report.checked) > 1:
        checked = ", ".join(f"{name} {n}" for name, n in sorted(report.checked.items()))
        lines.append(f"  checked: {checked}")
    for rule, n in sorted(report.by_rule().items()):
        lines.append(f"  {rule}: {n}")
    for violation in report.violations[:limit]:
        lines.append(f"  - {violation}")
    hidden = len(report.violations) - limit
    if hidden > 0:
        lines.append(f"  ... {hidden} more (use --max or --json)")
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    if args.max < 0:
        raise InputError("--max must be >= 0")
    if any(not p for _, p in args.also):
        raise InputError("--with CONTRACT PATH: an empty string is not a path")
    also = [(c, p) for c, p in args.also]
    report = run_validate(args.contract, args.path, args.format, args.each, also)
    if args.json:
        print(json.dumps(report.to_dict(limit=args.max), indent=2))
    else:
        print(format_report(report, args.path, args.max))
    return EXIT_OK if report.ok else EXIT_INVALID


def add_contracts(sub: Any) -> None:
    p = sub.add_parser(
        "contracts",
        help=COMMANDS["contracts"].summary,
        description="The contract catalogue: JSON Schemas and semantic rules.",
        epilog=(
            "examples:\n"
            "  dynconform contracts list\n"
            "  dynconform contracts show events.kv-events --rules\n"
            "  dynconform contracts verify\n"
            "  dynconform contracts compat tests/fixtures/contracts-baseline builtin"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    csub = p.add_subparsers(dest="contracts_command", metavar="COMMAND")
    help_when_bare(p)

    ls = csub.add_parser(
        "list",
        help="list the contracts by family",
        description="List the contracts by family: name, version, title and rule count.",
        epilog=(
            "examples:\n"
            "  dynconform contracts list\n"
            "  dynconform contracts list --json | jq -r '.[].name'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ls.add_argument("--json", action="store_true", help="print as JSON")
    ls.set_defaults(func=cmd_list)

    show = csub.add_parser(
        "show",
        help="print one contract's schema and rules",
        description="Print the JSON Schema of contract NAME, or with --rules its semantic rules.",
        epilog=(
            "examples:\n"
            "  dynconform contracts show http.chat-completion\n"
            "  dynconform contracts show events.kv-events --rules"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("name", help="contract name, see 'dynconform contracts list'")
    show.add_argument("--rules", action="store_true", help="print only its semantic rules")
    show.set_defaults(func=cmd_show)

    rules = csub.add_parser(
        "rules",
        help="list the semantic rules with their IDs",
        description="List every semantic rule: its ID, kind (record or stream), contracts "
        "and what it checks.",
        epilog=(
            "examples:\n"
            "  dynconform contracts rules\n"
            "  dynconform contracts rules --format markdown > docs/rules.md"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rules.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="output format"
    )
    rules.set_defaults(func=cmd_rules)

    export = csub.add_parser(
        "export",
        help="write language-neutral copies (schemas, OpenAPI, rule index) to DIR",
        description="Write the contracts as plain JSON Schema files, an OpenAPI document "
        "and a rule index to DIR, for tools in other languages.",
        epilog=(
            "examples:\n"
            "  dynconform contracts export out/contracts\n"
            "  dynconform contracts export out/contracts && "
            "dynconform contracts compat out/contracts builtin"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("dir", type=nonempty, help="output directory (created if missing)")
    export.set_defaults(func=cmd_export)

    verify = csub.add_parser(
        "verify",
        help="validate the bundled ai-dynamo captures against their contracts",
        description="Validate the ai-dynamo 1.6.1 captures bundled with dynconform against "
        "their contracts: a self-check of the catalogue. Exit 0 all valid, 1 a capture is "
        "invalid.",
        epilog=(
            "examples:\n"
            "  dynconform contracts verify\n"
            "  dynconform contracts verify --json | jq '.[] | select(.valid | not)'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("--json", action="store_true", help="print as JSON")
    verify.set_defaults(func=cmd_verify)

    # compat needs the stability package: 'dynconform validate' (same module) does not
    from dynconform.cli.compat_cmd import register_compat

    register_compat(csub)


def cmd_list(args: argparse.Namespace) -> int:
    catalog = Catalog.load()
    rules = default_rules()
    if args.json:
        rows = [
            {
                "name": c.name,
                "family": c.family,
                "version": c.version,
                "id": c.schema_id,
                "title": c.title,
                "rules": [r.id for r in rules.for_contract(c.name)],
            }
            for c in catalog
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    families = catalog.families()
    width = max((len(c.name) for c in catalog), default=0)
    for family, contracts in families.items():
        print(f"{family} ({len(contracts)})")
        for c in contracts:
            n_rules = len(rules.for_contract(c.name))
            extra = f"  [{n_rules} rule{'s' if n_rules != 1 else ''}]" if n_rules else ""
            print(f"  {c.name:<{width}}  v{c.version}  {c.title}{extra}")
    print(f"{len(catalog.names())} contracts in {len(families)} families, {len(rules)} rules")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    contract = Catalog.load().get(args.name)
    rules = default_rules().for_contract(contract.name)
    if args.rules:
        for r in rules:
            print(f"{r.id}  ({r.kind})  {r.summary}")
        return EXIT_OK
    print(json.dumps(contract.schema, indent=2))
    return EXIT_OK


def rules_markdown() -> str:
    """The rule catalogue as Markdown (the source of docs/rules.md)."""
    catalog = Catalog.load()
    rules = default_rules()
    lines = [
        "# Semantic rules",
        "",
        "Rules check what a JSON Schema cannot express. Each has a stable ID that appears in",
        "every violation it reports. Schema failures use `schema.<keyword>` IDs instead",
        "(`schema.required`, `schema.type`, `schema.maximum`, ...), and an instance that cannot",
        "be decoded reports `decode`. Record rules judge one instance; stream rules judge the",
        "ordered instances of one run.",
        "Generated by `dynconform contracts rules --format markdown`.",
    ]
    for family, contracts in catalog.families().items():
        family_rules = [
            r for c in contracts for r in rules.for_contract(c.name) if r.contract == c.name
        ]
        if not family_rules:
            continue
        lines += ["", f"## {family}", "", "| ID | kind | contract | rule |", "|---|---|---|---|"]
        for r in family_rules:
            names = ", ".join(f"`{name}`" for name in watched(r))
            lines.append(f"| `{r.id}` | {r.kind} | {names} | {r.summary} |")
    return "\n".join(lines) + "\n"


def cmd_rules(args: argparse.Namespace) -> int:
    rules = list(default_rules())
    if args.format == "markdown":
        print(rules_markdown(), end="")
        return EXIT_OK
    if args.format == "json":
        rows = [
            {"id": r.id, "contracts": list(watched(r)), "kind": r.kind, "summary": r.summary}
            for r in rules
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max((len(r.id) for r in rules), default=0)
    for r in rules:
        print(f"{r.id:<{width}}  {r.kind:<11}  {', '.join(watched(r))}: {r.summary}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    written = export_contracts(Path(args.dir))
    print(f"wrote {len(written)} files to {args.dir}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    validator = Validator()
    results = []
    for sample in iter_samples():
        report = (
            validator.validate_stream(sample.contract, sample.instances)
            if sample.stream
            else validator.validate(sample.contract, sample.instances[0])
        )
        results.append((sample, report))
    if args.json:
        rows = [{"sample": s.name, **r.to_dict(limit=5)} for s, r in results]
        print(json.dumps(rows, indent=2))
    else:
        width = max((len(s.name) for s, _ in results), default=0)
        for sample, report in results:
            status = "ok" if report.ok else f"FAIL ({len(report.violations)})"
            nested = sum(report.checked.values())
            print(
                f"  {sample.name:<{width}}  {sample.contract:<28} "
                f"{report.instances:>5} instances {nested:>6} checks  {status}"
            )
            for v in report.violations[:3]:
                print(f"      - {v}")
        bad = sum(1 for _, r in results if not r.ok)
        total = sum(sum(r.checked.values()) for _, r in results)
        print(
            f"{len(results)} bundled samples, {total} contract checks: "
            + ("all valid" if not bad else f"{bad} INVALID")
        )
    return EXIT_OK if all(r.ok for _, r in results) else EXIT_INVALID
