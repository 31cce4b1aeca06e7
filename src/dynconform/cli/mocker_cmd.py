"""``dynconform mocker ...``: the reference implementation."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from dynconform.cli._common import COMMANDS, UsageError, help_when_bare, path_arg
from dynconform.mocker.faults import FAULT_TYPES
from dynconform.mocker.model_dir import ModelDirError, build_model_dir
from dynconform.mocker.routing import ROUTER_MODES
from dynconform.mocker.serve import ServeError, ServeOptions, serve
from dynconform.mocker.violations import VIOLATIONS

EXIT_OK, EXIT_USAGE = 0, 2


def add_mocker(sub: Any) -> None:
    p = sub.add_parser(
        "mocker",
        help=COMMANDS["mocker"].summary,
        description=(
            "The reference implementation of every contract: an OpenAI-compatible frontend "
            "and mock workers that speak ai-dynamo 1.6.1's discovery, event and request planes."
        ),
        epilog=(
            "examples:\n"
            "  dynconform mocker serve --workers 2 --speedup-ratio 0\n"
            "  dynconform mocker build-model /tmp/tiny-model\n"
            "  dynconform mocker violations"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    msub = p.add_subparsers(dest="mocker_command", metavar="COMMAND", parser_class=type(p))
    _add_serve(msub)
    _add_build_model(msub)
    _add_violations(msub)
    help_when_bare(p)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer, ``minimum`` or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _failure_types(text: str) -> tuple[str, ...]:
    types = tuple(t.strip() for t in text.split(",") if t.strip())
    if not types:
        raise argparse.ArgumentTypeError(f"must name at least one of {','.join(FAULT_TYPES)}")
    return types


def _add_serve(msub: Any) -> None:
    p = msub.add_parser(
        "serve",
        help="start a frontend and N mock workers on loopback",
        description=(
            "Start the reference stack on loopback and keep it up until Ctrl-C or SIGTERM. "
            "Default topology: file discovery in a temporary directory and ZMQ events (no "
            "server needed). --discovery etcd / --event-plane nats start real servers unless "
            "--etcd / --nats name running ones."
        ),
        epilog=(
            "examples:\n"
            "  dynconform mocker serve --workers 2 --speedup-ratio 0\n"
            "  dynconform mocker serve --workers 2 --router-mode kv\n"
            "  dynconform mocker serve --discovery etcd --event-plane nats --port 0 \\\n"
            "      --ready-file ready.json\n"
            "  dynconform mocker serve --violate kv.block-hash-chain\n"
            "  curl -X POST $(jq -r .control.url ready.json)/workers/0/restart\n"
            "\n"
            "exit status: 0 stopped by Ctrl-C or SIGTERM once ready; 2 bad options or the stack\n"
            "could not start; 130 (Ctrl-C) or 143 (SIGTERM) stopped while starting (everything\n"
            "started is stopped, no ready line or ready file is written)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workers", type=int, default=1, help="mock workers (default 1)")
    p.add_argument(
        "--discovery",
        choices=("file", "etcd"),
        default="file",
        help="discovery store: a temporary directory, or etcd (default file)",
    )
    p.add_argument(
        "--event-plane",
        choices=("zmq", "nats"),
        default="zmq",
        help="event plane: ZMQ publishers, or NATS (default zmq)",
    )
    p.add_argument("--etcd", metavar="URL", help="use this etcd instead of starting one")
    p.add_argument("--nats", metavar="URL", help="use this NATS server instead of starting one")
    p.add_argument("--model-dir", type=path_arg, help="model directory (default: build a tiny one)")
    p.add_argument("--model-name", help="served model name (default: the directory's name)")
    p.add_argument("--block-size", type=int, default=16,
                   help="tokens per KV block (default 16)")  # fmt: skip
    p.add_argument("--num-gpu-blocks", type=int, default=16384,
                   help="KV blocks per worker (default 16384)")  # fmt: skip
    p.add_argument("--speedup-ratio", type=float, default=1.0, help="0: no simulated delays")
    p.add_argument("--port", type=int, default=8000, help="frontend HTTP port (0: a free one)")
    p.add_argument("--lease-ttl", type=int, default=10, help="discovery lease TTL in seconds")
    p.add_argument(
        "--router-mode",
        choices=ROUTER_MODES,
        default="round-robin",
        help="how the frontend picks a worker (kv: by cached prefix blocks and load)",
    )
    p.add_argument(
        "--violate",
        action="append",
        default=[],
        metavar="MODE",
        help="break one contract rule on purpose (repeatable; see 'dynconform mocker violations')",
    )
    p.add_argument(
        "--failure-rate", type=float, default=0.0, help="fraction of failed requests (0-1)"
    )
    p.add_argument(
        "--failure-types",
        type=_failure_types,
        default=("500",),
        help=f"comma-separated: {','.join(FAULT_TYPES)}",
    )
    p.add_argument(
        "--crash-after-tokens", type=int, metavar="N", help="worker 0 exits after N tokens"
    )
    p.add_argument(
        "--stall-after-tokens", type=int, metavar="N", help="worker 0 stalls after N tokens"
    )
    p.add_argument("--startup-time", type=float, default=0.0, help="worker 0 start delay (s)")
    p.add_argument(
        "--record-requests", action="store_true", help="workers record request-plane frames"
    )
    p.add_argument("--ready-file", type=path_arg, help="write the stack's URLs as JSON when ready")
    p.add_argument(
        "--control-port",
        type=int,
        default=0,
        metavar="PORT",
        help="loopback port of the control endpoint that kills and restarts workers "
        "(POST /workers/N/kill, /workers/N/restart; default: a free port)",
    )
    p.add_argument("--workdir", type=path_arg, help="keep logs and discovery files here")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    options = ServeOptions(
        workers=args.workers,
        discovery=args.discovery,
        event_plane=args.event_plane,
        etcd_url=args.etcd,
        nats_url=args.nats,
        model_dir=args.model_dir,
        model_name=args.model_name,
        block_size=args.block_size,
        num_gpu_blocks=args.num_gpu_blocks,
        speedup_ratio=args.speedup_ratio,
        port=args.port,
        lease_ttl=args.lease_ttl,
        router_mode=args.router_mode,
        violations=tuple(args.violate),
        failure_rate=args.failure_rate,
        failure_types=args.failure_types,
        crash_after_tokens=args.crash_after_tokens,
        stall_after_tokens=args.stall_after_tokens,
        startup_time=args.startup_time,
        record_requests=args.record_requests,
        ready_file=args.ready_file,
        control_port=args.control_port,
        workdir=args.workdir,
    )
    try:
        code = serve(options)
    except ServeError as exc:
        raise UsageError(str(exc)) from None
    if code:
        sys.stderr.write("dynconform: interrupted while the stack was starting; stopped it\n")
    return code


def _add_build_model(msub: Any) -> None:
    p = msub.add_parser(
        "build-model",
        help="write a tiny HF-style model directory (offline)",
        description="Write the tiny model directory the mock workers serve (nothing downloaded).",
        epilog=(
            "examples:\n"
            "  dynconform mocker build-model /tmp/tiny-model\n"
            "  dynconform mocker build-model /tmp/tiny-model --vocab-size 512 "
            "--context-length 8192 --overwrite\n"
            "  dynconform mocker serve --model-dir /tmp/tiny-model"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", type=path_arg, help="directory to create")
    p.add_argument(
        "--vocab-size",
        type=_int_at_least(259),
        default=320,
        help="BPE vocabulary size, 259 or more: 256 bytes and 3 special tokens (default 320)",
    )
    p.add_argument(
        "--context-length",
        type=_int_at_least(1),
        default=4096,
        help="max_position_embeddings in config.json (default 4096)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing model files")
    p.set_defaults(func=cmd_build_model)


def cmd_build_model(args: argparse.Namespace) -> int:
    try:
        path = build_model_dir(
            args.dir,
            vocab_size=args.vocab_size,
            context_length=args.context_length,
            overwrite=args.overwrite,
        )
    except ModelDirError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(f"{path}\n")
    return EXIT_OK


def _add_violations(msub: Any) -> None:
    p = msub.add_parser(
        "violations",
        help="list the violation modes and the rule each one breaks",
        description="List the --violate modes: the rule ID and contract that reject each.",
        epilog=(
            "examples:\n"
            "  dynconform mocker violations\n"
            "  dynconform run --violate kv.block-hash-chain   # watch the check fail"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_violations)


def cmd_violations(args: argparse.Namespace) -> int:
    modes = sorted(VIOLATIONS.values(), key=lambda m: m.name)
    if args.json:
        rows = [
            {
                "name": m.name,
                "rule": m.rule,
                "contract": m.contract,
                "component": m.component,
                "surface": m.surface,
                "needs": list(m.needs),
                "behaviour": m.behaviour,
                "summary": m.summary,
            }
            for m in modes
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    width = max(len(m.name) for m in modes)
    rule_width = max(len(m.rule) for m in modes)
    for m in modes:
        needs = f" [needs {', '.join(m.needs)}]" if m.needs else ""
        needs += " [behaviour]" if m.behaviour else ""
        sys.stdout.write(
            f"{m.name:<{width}}  {m.rule:<{rule_width}}  {m.contract}: {m.summary}{needs}\n"
        )
    return EXIT_OK
