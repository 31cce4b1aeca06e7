"""Latency measurements: the model, the runner's record, and backward compatibility."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dynconform.conformance._http import HttpClient, Response
from dynconform.conformance._latency import LatencyLog, route_of
from dynconform.reports import ConformanceReport, Measurement, load_report, report_json


def test_nearest_rank_percentiles() -> None:
    m = Measurement.of("http.chat.total", [float(v) for v in range(100, 0, -1)])
    assert (m.count, m.min, m.max, m.mean) == (100, 1.0, 100.0, 50.5)
    assert m.percentiles == {50: 50.0, 90: 90.0, 99: 99.0}
    one = Measurement.of("x.y", [7.0])
    assert one.percentiles == {50: 7.0, 90: 7.0, 99: 7.0}
    assert Measurement.from_dict("x.y", one.to_dict()) == one
    with pytest.raises(ValueError, match="no samples"):
        Measurement.of("x.y", [])


def test_routes() -> None:
    assert route_of("/v1/chat/completions") == "chat"
    assert route_of("/v1/completions?x=1") == "completions"
    assert route_of("/v1/models/") == "models"
    assert route_of("/metrics") == "metrics"
    assert route_of("/%00weird/../") == "other"


def _response(url: str, status: int, ctype: str, elapsed: float, first: float | None) -> Response:
    return Response("POST", url, status, {"content-type": ctype}, b"x", elapsed, None, first)


def test_latency_log_keeps_successes_and_stream_first_bytes() -> None:
    log = LatencyLog()
    log.record(_response("/v1/chat/completions", 200, "text/event-stream", 0.050, 0.010))
    log.record(_response("/v1/chat/completions", 200, "application/json", 0.030, 0.030))
    log.record(_response("/v1/chat/completions", 400, "application/json", 0.001, 0.001))
    series = {m.name: m for m in log.measurements()}
    assert set(series) == {"http.chat.total", "http.chat.ttft"}
    assert series["http.chat.total"].count == 2
    assert series["http.chat.total"].max == pytest.approx(50.0)
    assert series["http.chat.ttft"].count == 1
    assert series["http.chat.ttft"].min == pytest.approx(10.0)


class _SlowStream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for part in (b"data: first\n\n", b"data: [DONE]\n\n"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            time.sleep(0.3)
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SlowStream)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_client_times_the_first_streamed_byte(server: str) -> None:
    log = LatencyLog()
    response = HttpClient(server, timeout=5, on_response=log.record).get("/v1/chat/completions")
    assert response.body == b"data: first\n\ndata: [DONE]\n\n"
    assert response.first_byte is not None
    assert response.first_byte < 0.25
    assert response.elapsed >= 0.55
    series = {m.name: m for m in log.measurements()}
    assert series["http.chat.ttft"].max < series["http.chat.total"].min


def test_the_real_run_records_latencies(run_report: ConformanceReport) -> None:
    series = run_report.measurements
    assert {"http.chat.total", "http.chat.ttft", "http.completions.total"} <= set(series)
    for m in series.values():
        assert m.count >= 1
        assert 0 < m.min <= m.percentiles[50] <= m.percentiles[99] <= m.max < 30_000
    data = json.loads(report_json(run_report))
    assert data["measurements"]["http.chat.ttft"]["unit"] == "ms"


def test_reports_without_measurements_or_reproduce_still_load(
    run_dir: Path, tmp_path: Path
) -> None:
    data = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    del data["measurements"]
    for check in data["checks"]:
        del check["reproduce"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    report = load_report(old)
    assert isinstance(report, ConformanceReport)
    assert report.measurements == {}
    assert all(c.reproduce == "" for c in report.checks)
    again = report.to_dict()
    assert "measurements" not in again
    assert again == data
