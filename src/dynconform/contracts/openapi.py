"""The OpenAPI 3.1 document of the HTTP routes Dynamo serves, built from the http contracts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynconform.contracts._catalog import Catalog, Contract

__all__ = ["openapi_document"]

#: Families whose contracts become components; plus the text expositions of ``/metrics``.
_FAMILIES = ("http", "health")
_EXTRA = ("metrics.frontend-exposition", "metrics.worker-exposition")
#: Keywords whose values are data, not schemas.
_DATA_KEYWORDS = frozenset({"examples", "example", "const", "enum", "default"})
_DROPPED = frozenset({"$schema", "$id", "$defs", "x-dynconform"})
_PREFIX = "#/components/schemas/"


class _Refs:
    """Rewrites references of one contract's schema to ``#/components/schemas/...``."""

    def __init__(self, contract: str, ids: Mapping[str, str]) -> None:
        self.contract = contract
        self.ids = ids

    def target(self, ref: str) -> str:
        base, _, fragment = ref.partition("#")
        owner = self.contract if not base else self.ids.get(base)
        if owner is None:
            raise ValueError(f"{self.contract}: reference {ref!r} leaves the catalogue")
        if not fragment:
            return _PREFIX + owner
        if fragment.startswith("/$defs/") and fragment.count("/") == 2:
            return _PREFIX + owner + "." + fragment.removeprefix("/$defs/")
        raise ValueError(f"{self.contract}: unsupported reference {ref!r}")

    def rewrite(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED:
                continue
            if key == "$ref" and isinstance(value, str):
                out[key] = self.target(value)
            elif key in _DATA_KEYWORDS:
                out[key] = value
            else:
                out[key] = self.rewrite(value)
        return out


def _components(contracts: list[Contract]) -> dict[str, Any]:
    ids = {c.schema_id: c.name for c in contracts}
    components: dict[str, Any] = {}
    for contract in contracts:
        refs = _Refs(contract.name, ids)
        schema = refs.rewrite(dict(contract.schema))
        schema["x-dynconform-contract"] = contract.name
        components[contract.name] = schema
        for name, sub in (contract.schema.get("$defs") or {}).items():
            components[f"{contract.name}.{name}"] = refs.rewrite(sub)
    return components


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _PREFIX + name}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid request: unreadable JSON, unknown `nvext` field, or a value out of range",
        404: "Unknown model or route",
        500: "Internal error",
        503: "No worker can serve the request",
    }
    return {
        str(code): _json("http.error", f"{reasons[code]} (Dynamo's flat error envelope)")
        for code in codes
    }


def _generate(request: str, response: str, chunk_doc: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": summary.replace(" ", "_").lower(),
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(request)}},
            },
            "responses": {
                "200": {
                    "description": (
                        "The answer: JSON, or with `stream: true` an event stream of "
                        f"{chunk_doc} ending with `data: [DONE]`"
                    ),
                    "content": {
                        "application/json": {"schema": _ref(response)},
                        "text/event-stream": {"schema": _ref("http.sse-stream")},
                    },
                },
                **_errors(400, 404, 500, 503),
            },
        }
    }


def _paths() -> dict[str, Any]:
    return {
        "/v1/models": {
            "get": {
                "operationId": "list_models",
                "summary": "List the served models",
                "responses": {"200": _json("http.models", "The models the frontend can route to")},
            }
        },
        "/v1/chat/completions": _generate(
            "http.chat-completion-request",
            "http.chat-completion",
            "`http.chat-completion-chunk` chunks",
            "Create chat completion",
        ),
        "/v1/completions": _generate(
            "http.completion-request",
            "http.completion",
            "`http.completion-chunk` chunks",
            "Create completion",
        ),
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Frontend health and discovered instances",
                "responses": {
                    "200": _json("health.frontend", "Healthy"),
                    "503": _json("health.frontend", "Not ready or shutting down"),
                },
            }
        },
        "/live": {
            "get": {
                "operationId": "live",
                "summary": "Frontend liveness",
                "responses": {
                    "200": _json("health.frontend-live", "Live"),
                    "503": _json("health.frontend-live", "Shutting down"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics of the frontend",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition",
                        "content": {"text/plain": {"schema": _ref("metrics.frontend-exposition")}},
                    }
                },
            }
        },
    }


def openapi_document(catalog: Catalog | None = None) -> dict[str, Any]:
    """A self-contained OpenAPI 3.1 document (no external references).

    It describes the frontend's routes (``/v1/models``, ``/v1/chat/completions``,
    ``/v1/completions``, ``/health``, ``/live``, ``/metrics``). Every http and health contract
    is copied into ``components/schemas`` under its contract name (``$defs`` become
    ``<contract>.<def>``), with cross-contract references rewritten to local ones; the worker
    system server's bodies (``health.worker``, ``metrics.worker-exposition``) are components too.
    """
    catalog = catalog if catalog is not None else Catalog.load()
    contracts = [c for c in catalog if c.family in _FAMILIES or c.name in _EXTRA]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "NVIDIA Dynamo frontend HTTP API",
            "version": "1.6.1",
            "description": (
                "OpenAI-compatible routes of the Dynamo frontend as ai-dynamo 1.6.1 serves "
                "them, generated from the dynconform contracts. Errors use Dynamo's flat "
                "envelope `{message, type, code}`."
            ),
        },
        "servers": [{"url": "http://localhost:8000", "description": "Default frontend port"}],
        "paths": _paths(),
        "components": {"schemas": _components(contracts)},
    }
