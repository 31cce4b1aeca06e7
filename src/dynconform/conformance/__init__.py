"""The conformance suite: a catalogue of checks run against a live Dynamo deployment.

Each check is a declarative record (:class:`Check`): a stable ID, an RFC 2119 description,
the contract rules it enforces, its profiles and required features. A run starts (or attaches
to) a system under test, taps its discovery store and event plane for the whole run, executes
the selected checks through pytest and writes a versioned report::

    from dynconform.conformance import RunConfig, run_suite

    outcome = run_suite(RunConfig(backend="reference", profiles=("core", "streaming")))
    print(outcome.exit_code, outcome.report.statistics)

The pytest plugin (``dynconform.conformance.plugin``, entry point ``pytest11``) runs the same
suite inside any pytest: ``pytest --pyargs dynconform.conformance.suite --dynconform-target
URL``.
"""

from __future__ import annotations

from dynconform.conformance._api import RunOutcome, plan_lines, pytest_args, run_suite
from dynconform.conformance._check import PHASES, Check, CheckRegistry, check
from dynconform.conformance._context import Context, Shared
from dynconform.conformance._errors import CheckFailed, CheckSkipped, SutError
from dynconform.conformance._expectations import (
    Deviation,
    Expectations,
    apply_expectations,
    bundled_expectations,
    load_expectations,
)
from dynconform.conformance._live_tap import (
    DEFAULT_SCOPE,
    LiveProgress,
    LiveTap,
    LiveTapConfig,
    LiveTapError,
)
from dynconform.conformance._profiles import DEFAULT_PROFILES, FEATURES, PROFILES
from dynconform.conformance._session import (
    BACKENDS,
    TOPOLOGIES,
    RunConfig,
    Session,
    execute,
    make_launcher,
)
from dynconform.conformance._sut import Sut, WorkerControl, WorkerEndpoint
from dynconform.conformance._timeouts import DEFAULT_TIMEOUTS, Timeouts, eventually
from dynconform.conformance.checks import default_checks

__all__ = [
    "BACKENDS",
    "DEFAULT_PROFILES",
    "DEFAULT_SCOPE",
    "DEFAULT_TIMEOUTS",
    "FEATURES",
    "PHASES",
    "PROFILES",
    "TOPOLOGIES",
    "Check",
    "CheckFailed",
    "CheckRegistry",
    "CheckSkipped",
    "Context",
    "Deviation",
    "Expectations",
    "LiveProgress",
    "LiveTap",
    "LiveTapConfig",
    "LiveTapError",
    "RunConfig",
    "RunOutcome",
    "Session",
    "Shared",
    "Sut",
    "SutError",
    "Timeouts",
    "WorkerControl",
    "WorkerEndpoint",
    "apply_expectations",
    "bundled_expectations",
    "check",
    "default_checks",
    "eventually",
    "execute",
    "load_expectations",
    "make_launcher",
    "plan_lines",
    "pytest_args",
    "run_suite",
]
