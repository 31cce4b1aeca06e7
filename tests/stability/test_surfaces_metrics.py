"""Metric families: a real 1.6.1 exposition served on loopback, a mutant of it, and the
types and labels ``prometheus_names.py`` comments state."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from surfaces_helpers import V1, write_tree

from dynconform.cli import main
from dynconform.contracts import InputError
from dynconform.stability import (
    Status,
    SurfaceOptions,
    build_surfaces,
    diff_surfaces,
    judge_surfaces,
    parse_exposition,
    snapshot_surfaces,
)

EXCHANGES = Path(__file__).parents[1] / "fixtures/ai-dynamo-1.6.1/etcd_nats/http_exchanges.json"


def _exposition(name: str) -> str:
    for item in json.loads(EXCHANGES.read_text(encoding="utf-8")):
        if item["name"] == name:
            body: str = item["body_text"]
            return body
    raise AssertionError(name)


FRONTEND = _exposition("metrics_frontend")
WORKER = _exposition("worker_metrics")


@contextlib.contextmanager
def serve(pages: dict[str, str]) -> Iterator[str]:
    """Serve ``{path: body}`` on a free loopback port; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _mutant(text: str) -> str:
    """The frontend exposition with a type changed, a label removed, a label added and a
    family dropped."""
    text = text.replace(
        "# TYPE dynamo_frontend_disconnected_clients gauge",
        "# TYPE dynamo_frontend_disconnected_clients counter",
    )
    text = text.replace('dynamo_frontend_active_requests{model="unknown_model"} 0\n', "")
    text = text.replace(
        'dynamo_frontend_active_requests{model="tiny"}', "dynamo_frontend_active_requests"
    )
    text = text.replace(
        "\ndynamo_frontend_detokenize_token_count ",
        '\ndynamo_frontend_detokenize_token_count{tokenizer="fast"} ',
    )
    lines = [ln for ln in text.splitlines() if "dynamo_frontend_audio_per_request" not in ln]
    return "\n".join(lines) + "\n"


def test_real_exposition_families() -> None:
    front = parse_exposition(FRONTEND)
    assert len(front) == 111
    active = front["dynamo_frontend_active_requests"]
    assert (active.type, active.labels) == ("gauge", ("model",))
    assert active.help.startswith("Number of requests currently being handled")
    hist = front["dynamo_frontend_audio_per_request"]
    assert (hist.type, hist.labels) == ("histogram", ("model",))  # "le" belongs to the type
    # Counters keep the name their TYPE line gives, with or without _total.
    assert front["dynamo_frontend_detokenize_token_count"].type == "counter"
    assert front["dynamo_frontend_output_tokens_total"].type == "counter"
    assert "dynamo_frontend_output_tokens" not in front
    worker = parse_exposition(WORKER)
    requests = worker["dynamo_component_requests_total"]
    assert requests.labels == (
        "dynamo_component",
        "dynamo_endpoint",
        "dynamo_namespace",
        "worker_id",
    )
    assert {f.origin for f in worker.values()} == {"exposition"}


def test_served_exposition_snapshot_and_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve({"/metrics": FRONTEND, "/mutant": _mutant(FRONTEND), "/worker": WORKER}) as base:
        snap = snapshot_surfaces(f"{base}/metrics")
        assert snap.metric_families == parse_exposition(FRONTEND, f"{base}/metrics")
        out = tmp_path / "front.json"
        assert main(["surfaces", "snapshot", f"{base}/metrics", "-o", str(out)]) == 0
        assert "111 metric families" in capsys.readouterr().err
        saved = json.loads(out.read_text())["metricFamilies"]["dynamo_frontend_active_requests"]
        assert saved["type"] == "gauge"
        assert saved["labels"] == ["model"]
        # Same exposition twice: nothing to report.
        assert main(["surfaces", "diff", str(out), f"{base}/metrics"]) == 0
        capsys.readouterr()
        assert main(["surfaces", "diff", str(out), f"{base}/mutant", "--format", "json"]) == 1
        report = json.loads(capsys.readouterr().out)
        # A source snapshot with --metrics-url gets the live families merged in.
        root = write_tree(tmp_path / "pkg", V1)
        merged = snapshot_surfaces(str(root), SurfaceOptions(metrics_url=f"{base}/worker"))
        assert "dynamo_component_requests_total" in merged.metric_families
        assert "frontend_service.REQUESTS_TOTAL" in merged.metric_families
        assert main(["surfaces", "snapshot", f"{base}/nothing"]) == 2
        assert "cannot read metrics" in capsys.readouterr().err
    got = {(f["kind"], f["path"]): f for f in report["findings"]}
    typed = got[("metric-type-changed", "metric:dynamo_frontend_disconnected_clients")]
    assert (typed["old"], typed["new"], typed["status"]) == ("gauge", "counter", "violation")
    lost = got[("metric-label-removed", "metric:dynamo_frontend_active_requests")]
    assert (lost["message"], lost["status"]) == ("labels removed: model", "violation")
    gained = got[("metric-label-added", "metric:dynamo_frontend_detokenize_token_count")]
    assert gained["status"] == "info"
    gone = got[("surface-removed", "metric:dynamo_frontend_audio_per_request")]
    assert gone["status"] == "violation"
    assert len(report["findings"]) == 4


def test_bad_metrics_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a Prometheus text exposition"):
        parse_exposition("# TYPE x gauge\nx{broken 1\n")
    with pytest.raises(InputError, match="starts with http"):
        snapshot_surfaces(str(tmp_path), SurfaceOptions(metrics_url="ftp://x/metrics"))


_NAMES_V1 = """
    class frontend_service:
        # Number of requests waiting in the queue (gauge)
        QUEUED_REQUESTS = "queued_requests"
        # Per-stage latency histogram (label: stage = preprocess|route)
        STAGE_DURATION_SECONDS = "stage_duration_seconds"
        # Tokens from the prefix cache (cumulative, labeled by model and worker type)
        CACHED_TOKENS_TOTAL = "cached_tokens_total"
        # Prefix for frontend metrics, inflight gauge included
        PREFIX = "dynamo_frontend"
        # Total requests
        REQUESTS_TOTAL = "requests_total"
    """


def test_prometheus_names_comments(tmp_path: Path) -> None:
    files = dict(V1)
    files["demo/prometheus_names.py"] = _NAMES_V1
    old = build_surfaces(write_tree(tmp_path / "a", files), "demo", version="1")
    fam = old.metric_families
    assert (
        fam["frontend_service.QUEUED_REQUESTS"].type,
        fam["frontend_service.QUEUED_REQUESTS"].labels,
    ) == ("gauge", None)
    stage = fam["frontend_service.STAGE_DURATION_SECONDS"]
    assert (stage.type, stage.labels) == ("histogram", ("stage",))
    assert fam["frontend_service.CACHED_TOKENS_TOTAL"].labels == ("model", "worker_type")
    assert fam["frontend_service.PREFIX"].type is None  # a prefix, not a metric
    assert fam["frontend_service.REQUESTS_TOTAL"].type is None  # not stated: unknown
    files["demo/prometheus_names.py"] = (
        _NAMES_V1.replace("(gauge)", "(counter)")
        .replace("(label: stage = preprocess|route)", "(labels: stage, phase)")
        .replace("labeled by model and worker type", "labeled by model")
        .replace("# Total requests", "# Total requests (counter)")
    )
    new = build_surfaces(write_tree(tmp_path / "b", files), "demo", version="2")
    found = {(f.kind, f.path, f.message) for f in diff_surfaces(old, new)}
    assert found == {
        (
            "metric-type-changed",
            "metric:queued_requests",
            "frontend_service.QUEUED_REQUESTS: type changed",
        ),
        (
            "metric-label-added",
            "metric:stage_duration_seconds",
            "frontend_service.STAGE_DURATION_SECONDS: labels added: phase",
        ),
        (
            "metric-label-removed",
            "metric:cached_tokens_total",
            "frontend_service.CACHED_TOKENS_TOTAL: labels removed: worker_type",
        ),
    }
    report = judge_surfaces(old, new)
    assert {f.kind for f in report.violations} == {"metric-type-changed", "metric-label-removed"}
    assert all(f.status is Status.INFO for f in report.findings if f.kind == "metric-label-added")
