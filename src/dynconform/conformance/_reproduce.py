"""The command line that runs one check of a run again, alone, with the same inputs."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dynconform.conformance._session import RunConfig

__all__ = ["reproduce_command"]


def reproduce_command(config: RunConfig, check_id: str) -> str:
    """``dynconform run ... --check ID --seed N`` for ``check_id`` under ``config``."""
    args = ["dynconform", "run"]
    if config.target is not None:
        args += ["--target", config.target]
        for flag, value in (
            ("--discovery", config.discovery),
            ("--event-plane", config.event_plane),
        ):
            if value:
                args += [flag, value]
        for url in config.worker_urls:
            args += ["--worker-url", url]
        for feature in config.features:
            args += ["--feature", feature]
    else:
        args += ["--backend", config.backend]
        if config.topology != "file":
            args += ["--topology", config.topology]
        if config.dynamo_version:
            args += ["--dynamo-version", config.dynamo_version]
        if config.model_path is not None:
            args += ["--model-path", str(config.model_path)]
        for mode in config.violations:
            args += ["--violate", mode]
    if config.model:
        args += ["--model", config.model]
    for name, seconds in sorted(config.timeouts.overrides.items()):
        args += ["--timeout", f"{name}={seconds:g}"]
    if config.expectations is not None:
        args += ["--expectations", str(config.expectations)]
    args += ["--check", check_id, "--seed", str(config.seed)]
    return shlex.join(args)
