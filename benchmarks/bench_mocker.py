"""Throughput of the reference mocker stack against the real ai-dynamo 1.6.1 stack.

    python benchmarks/bench_mocker.py                              # finds a venv with ai-dynamo
    python benchmarks/bench_mocker.py --real-python /tmp/dynenv/bin/python
    python benchmarks/bench_mocker.py --requests 1000 --max-tokens 16

In one run it starts ``dynconform mocker serve`` (one worker, file discovery, ZMQ events,
speedup ratio 0) and measures it, stops it, then starts the real ``python -m dynamo.frontend``
and ``python -m dynamo.mocker`` (file discovery through ``DYN_FILE_KV``, TCP request plane,
ZMQ event plane, speedup ratio 0, round-robin routing) on the same model directory and block
size and measures it with the same load generator: asyncio + aiohttp, a fixed seeded set of
prompts, a fixed number of chat completions at a fixed concurrency, non-streaming and
streaming, ``max_tokens`` fixed and ``ignore_eos`` set so every answer has the same length.

Reported per stack and mode: requests/s (completed requests over the wall time of the
measured batch), p50/p99 latency (request sent to last byte / ``[DONE]``), p50 time to first
chunk when streaming, errors, and the ratios reference/real. Target: the reference serves at
least 1.0 x the real stack's requests/s. Results go to ``--out`` (``mocker.json``, ``mocker.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from dynconform.mocker.model_dir import build_model_dir

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
MODEL = "tiny"
MODES = ("non-streaming", "streaming")
VENV_GUESSES = ("/tmp/dynenv", "/tmp/dynamo-venv", "~/.venvs/dynamo", ".venv-dynamo")
INSTALL_HINT = (
    "python3.11 -m venv /tmp/dynenv && /tmp/dynenv/bin/pip install --no-deps "
    "ai-dynamo==1.6.1 ai-dynamo-runtime==1.6.1, then the requirements both wheels declare "
    "except aisimulate, with certifi unpinned"
)
_WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "tired",
    "engineers",
    "debug",
    "distributed",
    "inference",
    "caches",
    "on",
    "loopback",
    "sockets",
    "under",
    "steady",
    "synthetic",
    "load",
)


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Group:
    """Children started in their own process groups; :meth:`stop` ends every group."""

    logs: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        with (self.logs / f"{name}.log").open("wb") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.logs,
                env=env,
                start_new_session=True,
            )
        self.children.append((name, process))

    def check_alive(self) -> None:
        for name, process in self.children:
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"{name} exited (code {process.returncode}):\n{tail}")

    def stop(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for _, process in reversed(self.children):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.children.clear()


def _tree_cpu_seconds(roots: list[int]) -> float:
    """User + system CPU seconds of ``roots`` and all their descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = set(roots), list(roots)
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(pid, 0.0) for pid in tree)


@contextlib.contextmanager
def reference_stack(
    model_dir: Path, block_size: int, timeout: float
) -> Iterator[tuple[str, list[int]]]:
    """``dynconform mocker serve`` with one worker; yields the frontend URL."""
    with tempfile.TemporaryDirectory(prefix="bench-ref-") as tmp:
        group = Group(Path(tmp))
        ready = Path(tmp) / "ready.json"
        argv = [
            sys.executable, "-m", "dynconform", "mocker", "serve",
            "--workers", "1", "--port", "0", "--speedup-ratio", "0",
            "--discovery", "file", "--event-plane", "zmq",
            "--model-dir", str(model_dir), "--model-name", MODEL,
            "--block-size", str(block_size),
            "--ready-file", str(ready), "--workdir", str(Path(tmp) / "stack"),
        ]  # fmt: skip
        try:
            group.spawn("serve", argv)
            deadline = time.monotonic() + timeout
            while not ready.is_file():
                group.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"reference stack not ready within {timeout:g} s")
                time.sleep(0.1)
            url: str = json.loads(ready.read_text())["frontend"]["url"]
            yield url, [p.pid for _, p in group.children]
        finally:
            group.stop()


@contextlib.contextmanager
def real_stack(
    python: str, model_dir: Path, block_size: int, timeout: float
) -> Iterator[tuple[str, list[int]]]:
    """The real ``dynamo.mocker`` + ``dynamo.frontend`` on file discovery; yields the URL."""
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        group = Group(Path(tmp))
        port = free_port()
        env = dict(os.environ)
        env.update(DYN_FILE_KV=str(Path(tmp) / "kv"), DYN_LOG="warn")
        env.pop("DYN_SYSTEM_PORT", None)  # a shared port would clash; ports > 32767 exit
        planes = ["--discovery-backend", "file", "--request-plane", "tcp", "--event-plane", "zmq"]
        worker = [
            python, "-m", "dynamo.mocker",
            "--model-path", str(model_dir), "--model-name", MODEL,
            "--block-size", str(block_size), "--speedup-ratio", "0", *planes,
        ]  # fmt: skip
        frontend = [
            python, "-m", "dynamo.frontend",
            "--http-host", LOOPBACK, "--http-port", str(port),
            "--router-mode", "round-robin", "--kv-cache-block-size", str(block_size), *planes,
        ]  # fmt: skip
        try:
            group.spawn("worker", worker, env)
            group.spawn("frontend", frontend, env)
            url = f"http://{LOOPBACK}:{port}"
            asyncio.run(_wait_model(url, group, timeout))
            yield url, [p.pid for _, p in group.children]
        finally:
            group.stop()


async def _wait_model(url: str, group: Group, timeout: float) -> None:
    """Until the model is listed and one chat completion succeeds."""
    deadline = time.monotonic() + timeout
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    async with aiohttp.ClientSession() as session:
        while True:
            group.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"real stack not ready within {timeout:g} s")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(f"{url}/v1/models") as resp:
                    models = await resp.json() if resp.status == 200 else {}
                if any(m.get("id") == MODEL for m in models.get("data", [])):
                    async with session.post(f"{url}/v1/chat/completions", json=body) as resp:
                        if resp.status == 200:
                            return
            await asyncio.sleep(0.2)


# -- load generator -----------------------------------------------------------------------------


def prompts(count: int, seed: int) -> list[str]:
    """``count`` prompts of 16 to 96 words, the same for every stack and run with ``seed``."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(_WORDS, k=rng.randint(16, 96))) for _ in range(count)]


@dataclass
class Sample:
    latency: float
    ttft: float | None
    tokens: int
    error: str | None = None


async def _one(
    session: aiohttp.ClientSession, url: str, prompt: str, stream: bool, max_tokens: int
) -> Sample:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    start = time.perf_counter()
    ttft: float | None = None
    try:
        async with session.post(f"{url}/v1/chat/completions", json=body) as resp:
            if resp.status != 200:
                text = (await resp.text())[:200]
                return Sample(time.perf_counter() - start, None, 0, f"HTTP {resp.status}: {text}")
            if not stream:
                data = await resp.json()
                tokens = int((data.get("usage") or {}).get("completion_tokens") or 0)
                return Sample(time.perf_counter() - start, None, tokens)
            tokens, done = 0, False
            async for raw in resp.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                chunk = json.loads(payload)
                if chunk.get("choices") and ttft is None:
                    ttft = time.perf_counter() - start
                if chunk.get("usage"):
                    tokens = int(chunk["usage"].get("completion_tokens") or 0)
            error = None if done else "stream ended without [DONE]"
            return Sample(time.perf_counter() - start, ttft, tokens, error)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        return Sample(time.perf_counter() - start, ttft, 0, f"{type(exc).__name__}: {exc}")


async def _batch(
    url: str, texts: list[str], n: int, concurrency: int, stream: bool, max_tokens: int
) -> tuple[list[Sample], float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    samples: list[Sample] = []
    next_index = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            samples.append(await _one(session, url, texts[i % len(texts)], stream, max_tokens))

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return samples, wall


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def measure(
    stack: tuple[str, list[int]], args: argparse.Namespace, texts: list[str]
) -> dict[str, Any]:
    """Warm-up, then the measured batch, for each mode."""
    url, pids = stack
    out: dict[str, Any] = {}
    for mode in MODES:
        stream = mode == "streaming"
        asyncio.run(_batch(url, texts, args.warmup, args.concurrency, stream, args.max_tokens))
        cpu = _tree_cpu_seconds(pids)
        samples, wall = asyncio.run(
            _batch(url, texts, args.requests, args.concurrency, stream, args.max_tokens)
        )
        cpu = _tree_cpu_seconds(pids) - cpu
        good = [s for s in samples if s.error is None]
        errors = [s.error for s in samples if s.error is not None]
        latencies = [s.latency for s in good]
        ttfts = [s.ttft for s in good if s.ttft is not None]
        out[mode] = {
            "requests": len(samples),
            "ok": len(good),
            "errors": len(errors),
            "first_errors": sorted(set(errors))[:5],
            "wall_s": round(wall, 3),
            "stack_cpu_s": round(cpu, 2),
            "stack_cpu_ms_per_request": round(cpu * 1000 / len(good), 2) if good else None,
            "requests_per_s": round(len(good) / wall, 1) if wall else 0.0,
            "p50_ms": round(_percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(_percentile(latencies, 99) * 1000, 2),
            "ttft_p50_ms": round(_percentile(ttfts, 50) * 1000, 2) if ttfts else None,
            "completion_tokens_mean": round(sum(s.tokens for s in good) / len(good), 2)
            if good
            else 0,
        }
        print(f"  {mode}: {json.dumps(out[mode])}", file=sys.stderr)
    return out


# -- report -------------------------------------------------------------------------------------


def find_real_python(given: str | None) -> str | None:
    """``given`` or the first guessed venv whose python imports ``dynamo.mocker``."""
    candidates = [given] if given else []
    if not given:
        for guess in VENV_GUESSES:
            candidates.append(str(Path(guess).expanduser() / "bin" / "python"))
    for python in candidates:
        if python and shutil.which(python) and _real_version(python):
            return python
    if given:
        raise SystemExit(f"{given} cannot import dynamo.mocker and dynamo.frontend")
    return None


def _real_version(python: str) -> dict[str, str] | None:
    code = (
        "import json, importlib.metadata as m, dynamo.mocker, dynamo.frontend;"
        "print(json.dumps({p: m.version(p) for p in ('ai-dynamo', 'ai-dynamo-runtime')}))"
    )
    try:
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=120, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    versions: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return versions


def machine(real: dict[str, str] | None) -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {p: importlib.metadata.version(p) for p in ("dynconform", "aiohttp")}
    versions.update(real or {"ai-dynamo": "not measured"})
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": versions,
    }


def ratios(
    stacks: dict[str, dict[str, Any]], rounds: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Reference / real, best rounds and medians of rounds; the target needs both >= 1.0."""
    if "real" not in stacks:
        return {}
    out: dict[str, Any] = {}
    for mode in MODES:
        ref, real = stacks["reference"][mode], stacks["real"][mode]
        median = {
            k: statistics.median(r[mode]["requests_per_s"] for r in v) for k, v in rounds.items()
        }
        best = ref["requests_per_s"] / real["requests_per_s"] if real["requests_per_s"] else 0.0
        mid = median["reference"] / median["real"] if median["real"] else 0.0
        out[mode] = {
            "throughput_ref_vs_real": round(best, 3),
            "throughput_median_ref_vs_real": round(mid, 3),
            "p50_ref_vs_real": round(ref["p50_ms"] / real["p50_ms"], 3) if real["p50_ms"] else None,
            "p99_ref_vs_real": round(ref["p99_ms"] / real["p99_ms"], 3) if real["p99_ms"] else None,
            "target_throughput_1_0": best >= 1.0 and mid >= 1.0,
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    m, load = result["machine"], result["load"]
    lines = [
        "# dynconform mocker benchmark: reference vs real ai-dynamo 1.6.1",
        "",
        f"{m['date']}; {m['cpu']}, {m['cores']} cores; {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        f"Load: {load['requests']} chat completions per mode after {load['warmup']} warm-up, "
        f"best of {load['rounds']} rounds (each a fresh start of each stack, interleaved), "
        f"concurrency {load['concurrency']}, max_tokens {load['max_tokens']}, ignore_eos, "
        f"{load['prompts']} prompts (seed {load['seed']}); block size {load['block_size']}, "
        "speedup ratio 0, file discovery, one worker.",
        "",
        "| stack | mode | req/s | p50 ms | p99 ms | first chunk p50 ms | stack CPU ms/req "
        "| tokens/answer | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stack, modes in result["stacks"].items():
        for mode, r in modes.items():
            ttft = f"{r['ttft_p50_ms']:.2f}" if r["ttft_p50_ms"] is not None else "-"
            lines.append(
                f"| {stack} | {mode} | {r['requests_per_s']:,.1f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {ttft} | {r['stack_cpu_ms_per_request']} | "
                f"{r['completion_tokens_mean']} | {r['errors']} |"
            )
    if result["ratios"]:
        lines += [
            "",
            "| mode | req/s ref/real (best) | req/s ref/real (median) | p50 ref/real "
            "| p99 ref/real | target >= 1.0x |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for mode, r in result["ratios"].items():
            met = "met" if r["target_throughput_1_0"] else "NOT met"
            lines.append(
                f"| {mode} | {r['throughput_ref_vs_real']} | {r['throughput_median_ref_vs_real']} "
                f"| {r['p50_ref_vs_real']} | "
                f"{r['p99_ref_vs_real']} | {met} |"
            )
    else:
        lines += ["", f"Real stack not measured: {result.get('real_missing', '')}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--real-python", help="python of a venv with ai-dynamo 1.6.1")
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per mode")
    parser.add_argument(
        "--rounds", type=int, default=3, help="stack starts, interleaved (best kept)"
    )
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests per mode")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--prompts", type=int, default=256, help="distinct seeded prompts")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=120, help="start-up limit per stack")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    real_python = find_real_python(args.real_python)
    real_versions = _real_version(real_python) if real_python else None
    texts = prompts(args.prompts, args.seed)
    result: dict[str, Any] = {
        "machine": machine(real_versions),
        "load": {
            k: getattr(args, k)
            for k in (
                "requests",
                "warmup",
                "concurrency",
                "max_tokens",
                "prompts",
                "seed",
                "rounds",
            )
        }
        | {"block_size": args.block_size},
        "stacks": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        model_dir = build_model_dir(Path(tmp) / MODEL)
        if not real_python:
            result["real_missing"] = f"no venv with ai-dynamo found; create one: {INSTALL_HINT}"
            print(result["real_missing"], file=sys.stderr)
        rounds: dict[str, list[dict[str, Any]]] = {"reference": []}
        for i in range(args.rounds):
            print(f"round {i + 1}, reference: dynconform mocker serve", file=sys.stderr)
            with reference_stack(model_dir, args.block_size, args.timeout) as stack:
                rounds["reference"].append(measure(stack, args, texts))
            if real_python:
                print(f"round {i + 1}, real: dynamo.frontend + dynamo.mocker", file=sys.stderr)
                with real_stack(real_python, model_dir, args.block_size, args.timeout) as stack:
                    rounds.setdefault("real", []).append(measure(stack, args, texts))
    result["rounds"] = rounds
    result["stacks"] = {
        stack: {
            mode: max((r[mode] for r in runs), key=lambda m: m["requests_per_s"]) for mode in MODES
        }
        for stack, runs in rounds.items()
    }
    result["ratios"] = ratios(result["stacks"], rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mocker.json").write_text(json.dumps(result, indent=2) + "\n")
    report = markdown(result)
    (args.out / "mocker.md").write_text(report + "\n")
    print(report)
    print(f"written: {args.out / 'mocker.json'}, {args.out / 'mocker.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
