"""The conformance suite as a pytest module: one test per selected check.

Run it through ``dynconform run`` or with the plugin's options::

    pytest --pyargs dynconform.conformance.suite --dynconform-backend reference
"""

from __future__ import annotations

import pytest

from dynconform.conformance._check import Check
from dynconform.conformance._session import Session
from dynconform.conformance.plugin import run_check


def test_check(
    dynconform_check: Check, dynconform_session: Session, request: pytest.FixtureRequest
) -> None:
    run_check(request.config, dynconform_session, dynconform_check)
