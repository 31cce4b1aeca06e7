"""The OpenAPI 3.1 document of the HTTP routes Dynamo serves, built from the http contracts."""

from __future__ import annotations

from typing import Any

from dynconform.contracts._catalog import Catalog

__all__ = ["openapi_document"]


def openapi_document(catalog: Catalog | None = None) -> dict[str, Any]:
    """A self-contained OpenAPI 3.1 document (no external references)."""
    raise NotImplementedError("the http contract family is being written")
