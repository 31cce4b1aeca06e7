"""Secret references in a graph, and keeping secret values out of everything printed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dynconform.contracts.rules.deployment import SECRET_REF

#: Environment variable names that hold credentials by convention (``HF_TOKEN``,
#: ``DB_PASSWORD``, ``OPENAI_API_KEY``, ...). Used only to hide values from messages.
CREDENTIAL_NAME = re.compile(
    r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)
MASK = "***"
#: Shorter values are not worth hiding, and hiding them would garble every message.
_MIN_HIDDEN = 3


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


def _spellings(value: Any) -> set[str]:
    if isinstance(value, bool):
        return {str(value), str(value).lower()}
    out = {str(value)}
    if isinstance(value, str):
        out.add(repr(value)[1:-1])  # as a repr() inside a message shows it, escapes included
    return out


class Redactor:
    """Hides the values a graph gives to secret-looking environment variables.

    A value is hidden when its variable is declared in the component's ``secrets`` or its name
    ends like a credential (``..._TOKEN``, ``..._PASSWORD``, ``..._API_KEY``); values that are
    ``${{ secrets.NAME }}`` references hold no secret and stay visible. Works on any data, also
    data that fails the schema.
    """

    def __init__(self, graph: Any) -> None:
        hidden: set[str] = set()
        components = graph.get("components") if isinstance(graph, dict) else None
        for component in components if isinstance(components, list) else ():
            if not isinstance(component, dict):
                continue
            declared = component.get("secrets")
            names = (
                {s for s in declared if isinstance(s, str)} if isinstance(declared, list) else set()
            )
            environment = component.get("environment")
            if not isinstance(environment, dict):
                continue
            for name, value in environment.items():
                if name not in names and not CREDENTIAL_NAME.search(str(name)):
                    continue
                for scalar in _scalars(value):
                    if isinstance(scalar, str) and SECRET_REF.search(scalar):
                        continue
                    hidden |= {s for s in _spellings(scalar) if len(s) >= _MIN_HIDDEN}
        self._hidden = sorted(hidden, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._hidden)

    def __call__(self, text: str) -> str:
        for value in self._hidden:
            text = text.replace(value, MASK)
        return text
