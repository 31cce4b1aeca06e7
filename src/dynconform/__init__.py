"""dynconform: contracts, conformance suite and API governance for NVIDIA Dynamo."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
