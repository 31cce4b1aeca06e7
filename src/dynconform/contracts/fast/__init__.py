"""Contract validation at line rate: msgspec types compiled from the JSON Schemas.

:class:`FastValidator` gives the verdicts and violations of
:class:`~dynconform.contracts.Validator` for wire data: raw event-plane frames (the events
contracts) and JSON text (e.g. discovery records). At load time it compiles each contract's
JSON Schema into msgspec types; whatever a compiled type rejects, or a contract that does
not compile, goes to the reference validator, which also gives the messages, rule IDs and
JSON pointers. The semantic rules always run.

:func:`replay` validates a raw event-plane capture (the format of
``dynconform.contracts.iter_raw_frames``) with every rule on, for ``dynconform tap --replay``
and the benchmarks::

    from dynconform.contracts.fast import replay

    summary = replay("event_plane_raw.bin", loops=3)
    print(summary.events_per_second, dict(summary.violations_by_rule))
"""

from __future__ import annotations

from dynconform.contracts.fast._engine import FastValidator, FrameRun
from dynconform.contracts.fast._replay import ReplayProgress, ReplaySummary, replay

__all__ = ["FastValidator", "FrameRun", "ReplayProgress", "ReplaySummary", "replay"]
