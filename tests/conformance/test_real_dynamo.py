"""The suite against the real ai-dynamo on CPU (frontend + dynamo.mocker), both topologies.

Not part of the default run: it provisions ai-dynamo from PyPI into the user cache (once) and
takes about a minute per topology. Run it with::

    DYNCONFORM_DYNAMO_VERSION=1.6.1 .venv/bin/pytest tests/conformance -m real_dynamo

Every check must pass or fail exactly as the bundled expectations file says.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conformance_helpers import assert_no_process_left

from dynconform.conformance import PROFILES, RunConfig, bundled_expectations, run_suite

VERSION = os.environ.get("DYNCONFORM_DYNAMO_VERSION", "")

pytestmark = [
    pytest.mark.real_dynamo,
    pytest.mark.slow,
    pytest.mark.skipif(not VERSION, reason="set DYNCONFORM_DYNAMO_VERSION to run real Dynamo"),
]


@pytest.mark.parametrize("topology", ["file", "etcd-nats"])
def test_real_dynamo_matches_its_expectations(topology: str, tmp_path: Path) -> None:
    config = RunConfig(
        backend="dynamo",
        dynamo_version=VERSION,
        topology=topology,
        profiles=tuple(PROFILES),
        report_dir=tmp_path,
    )
    outcome = run_suite(config, progress=False)
    assert outcome.error is None
    assert outcome.report is not None
    report = outcome.report
    expectations = bundled_expectations(f"ai-dynamo-{VERSION}")
    expected = (
        {d.check for d in expectations.deviations if d.applies(topology)} if expectations else set()
    )
    failing = {c.id for c in report.checks if c.status in ("failed", "error")}
    assert failing == expected, {
        c.id: c.reason for c in report.checks if c.id in failing ^ expected
    }
    assert outcome.exit_code == 0
    assert report.implementation.version == VERSION
    assert_no_process_left(str(tmp_path))
