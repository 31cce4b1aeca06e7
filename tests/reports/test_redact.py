"""Secrets never reach a serialised report or any writer's output."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from dynconform.reports import (
    REDACTED,
    RENDER_FORMATS,
    ConformanceReport,
    StabilityReport,
    load_report,
    redact,
    redact_data,
    render,
    secret_name,
    summary_table,
    write_report,
)

ENV_SECRET = "hf_live_9c1f0e7d5b3a"
URL_PASSWORD = "s3cr3t-pw"
KEY_VALUE = "sk-test-51Habc"
BEARER = "eyJhbGciOiJIUzI1NiJ9.payload"
SECRETS = (ENV_SECRET, URL_PASSWORD, KEY_VALUE, BEARER)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("HF_TOKEN", True),
        ("NGC_API_KEY", True),
        ("apiKey", True),
        ("--auth-token", True),
        ("Authorization", True),
        ("DB_PASSWORD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("max_tokens", False),
        ("tokenizer", False),
        ("keys", False),
        ("knownDeviations", False),
        ("monkey", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def test_the_working_directory_is_not_a_secret() -> None:
    # PWD reads as a password word, but it is the shell's working directory: paths under it
    # stay readable in reports; a real password variable still does not.
    env = {"PWD": "/tmp/deployment", "OLDPWD": "/home/ci/work", "DB_PWD": "hunter2-db"}
    text = "file:///tmp/deployment/discovery from /home/ci/work with hunter2-db"
    assert (
        redact(text, env) == f"file:///tmp/deployment/discovery from /home/ci/work with {REDACTED}"
    )


def test_text_redaction() -> None:
    env = {"HF_TOKEN": ENV_SECRET, "PATH": "/usr/bin", "SOME_KEY": "true"}
    assert redact(f"loaded {ENV_SECRET} ok", env) == f"loaded {REDACTED} ok"
    assert redact("nats://user:pw@10.0.0.7:4222", env) == f"nats://{REDACTED}@10.0.0.7:4222"
    assert redact(f"Authorization: Bearer {BEARER}", env) == f"Authorization: Bearer {REDACTED}"
    assert redact(f"OPENAI_API_KEY={KEY_VALUE} run", env) == f"OPENAI_API_KEY={REDACTED} run"
    assert redact(f"--hf-token {KEY_VALUE} --model m", env) == f"--hf-token {REDACTED} --model m"
    assert redact(f"api_key: {KEY_VALUE}", env) == f"api_key: {REDACTED}"
    # what only names a key, and values too short or common to be secrets, stay
    kept = (
        "missing key: v1/instances/a",
        "max_tokens=16",
        "usr/bin is true",
        "token ids",
        "bearer_token_file: str | os.PathLike[str]] = None",
        "api_key=None",
        "cache_key: Optional[SecretStr]",
    )
    for text in kept:
        assert redact(text, env) == text
    assert redact("auth_token: 'abc'", env) == f"auth_token: '{REDACTED}'"
    data = {"details": {"apiKey": "x1", "keys": 3, "url": "etcd://a:b@h:2379"}, "token": 5}
    assert redact_data(data, env) == {
        "details": {"apiKey": REDACTED, "keys": 3, "url": f"etcd://{REDACTED}@h:2379"},
        "token": 5,
    }


@pytest.fixture
def leaky(run_report: ConformanceReport, monkeypatch: pytest.MonkeyPatch) -> ConformanceReport:
    """The real run with secrets where a deployment could leak them."""
    monkeypatch.setenv("DYNCONFORM_TEST_HF_TOKEN", ENV_SECRET)
    details = {
        **run_report.implementation.details,
        "discovery": f"etcd://root:{URL_PASSWORD}@10.0.0.6:2379",
        "api_key": KEY_VALUE,
        "model": f"served with {ENV_SECRET}",
    }
    impl = dataclasses.replace(run_report.implementation, details=details)
    failed = run_report.check("http.usage.totals")
    reason = f"POST failed: Authorization: Bearer {BEARER} rejected ({ENV_SECRET})"
    checks = tuple(
        dataclasses.replace(
            c, reason=reason, reproduce=c.reproduce + f" --target http://u:{URL_PASSWORD}@h"
        )
        if c is failed
        else c
        for c in run_report.checks
    )
    return dataclasses.replace(run_report, implementation=impl, checks=checks)


def test_the_unredacted_model_does_hold_the_secrets(leaky: ConformanceReport) -> None:
    raw = json.dumps(leaky.to_dict())
    assert all(secret in raw for secret in SECRETS)


def _read(out: str) -> str:
    """What a reader sees: Markdown's backslash escapes (``hf\\_live``) would hide a secret
    from a plain search."""
    return out.replace("\\", "")


@pytest.mark.parametrize("fmt", RENDER_FORMATS)
def test_no_writer_lets_a_secret_through(leaky: ConformanceReport, fmt: str) -> None:
    out = _read(render(leaky, fmt))
    for secret in SECRETS:
        assert secret not in out, (fmt, secret)
    assert REDACTED in out


def test_the_run_summary_redacts_too(leaky: ConformanceReport) -> None:
    out = summary_table(leaky, width=200)
    for secret in SECRETS:
        assert secret not in out, secret
    assert f"Bearer {REDACTED} rejected ({REDACTED})" in out


def test_written_reports_hold_no_secret(leaky: ConformanceReport, tmp_path: Path) -> None:
    for path in write_report(leaky, tmp_path):
        text = path.read_text(encoding="utf-8")
        for secret in SECRETS:
            assert secret not in text
        again = load_report(path)
        assert isinstance(again, ConformanceReport)
        assert again.implementation.details["api_key"] == REDACTED


def test_stability_writers_redact_too(
    published: StabilityReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVATE_INDEX_PASSWORD", ENV_SECRET)
    step = next(s for s in published.steps if not s.passed)
    finding = dataclasses.replace(
        step.findings[0],
        message=f"default changed to 'https://ci:{URL_PASSWORD}@idx' ({ENV_SECRET})",
    )
    one = dataclasses.replace(step, findings=(finding,))
    report = dataclasses.replace(
        published, steps=(one,), from_version=one.from_version, to_version=one.to_version
    )
    for fmt in RENDER_FORMATS:
        out = _read(render(report, fmt))
        assert ENV_SECRET not in out, fmt
        assert URL_PASSWORD not in out, fmt
        assert REDACTED in out, fmt
