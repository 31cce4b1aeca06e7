"""The redaction pass: secrets never reach a serialised report or a writer's output.

Three kinds of secret are removed:

* the value of a key (mapping key, ``NAME=value``, ``--name value`` or ``Name: value``) whose
  name looks secret: one of its words is TOKEN, SECRET, PASSWORD, KEY, CREDENTIAL or AUTH
  (``HF_TOKEN``, ``apiKey``, ``--auth-token``, ``Authorization``; not ``max_tokens``; in
  text a lone ``key`` or ``token`` must be a ``--flag`` or part of a longer name, and an
  unquoted literal or type annotation such as ``None`` or ``Optional[str]`` is kept, so that
  ``api_key: str = None`` in an API signature stays readable);
* the values of such environment variables that are set now (6 characters or more),
  wherever they appear;
* URL user information (``nats://user:pass@host`` becomes ``nats://[redacted]@host``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "Redactor", "redact", "redact_data", "secret_name"]

REDACTED = "[redacted]"

_SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "key",
        "apikey",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "authtoken",
    }
)
#: environment variables whose names look secret but are not (the shell's working directory)
_NOT_SECRET_ENV = frozenset({"PWD", "OLDPWD"})
#: environment values too short or too common to replace wherever they appear
_TRIVIAL = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off"})
_MIN_ENV_VALUE = 6
#: words that name a secret on their own; ``key`` or ``token`` alone are common prose
_STRONG_WORDS = frozenset(
    {"secret", "password", "passwd", "apikey", "credential", "credentials", "authorization"}
)

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/\s@'\"<>]+)@")
_ASSIGN = re.compile(
    r"(?P<name>(?<![\w-])-{0,2}[A-Za-z_][\w.-]*)(?P<sep>\s*[=:]\s*|\s+)(?P<quote>['\"]?)"
    r"(?P<value>[^\s'\",;&]+)"
)
_LITERAL = re.compile(r"(?i)(none|null|true|false|-?\d+(\.\d+)?)")
#: a Python annotation such as ``str``, ``Optional[str]`` or ``list[int] | None``
_ANNOTATION = re.compile(r"[A-Za-z_][\w.]*(\[[\w.\[\], |]*\]?)?\]*")
_BEARER = re.compile(r"\b(?P<scheme>Bearer|Basic|Token)\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})")


@functools.lru_cache(maxsize=4096)
def secret_name(name: str) -> bool:
    """Whether a key, flag or env var name looks like it holds a secret."""
    words = {w.lower() for w in _WORD.findall(name)}
    return bool(words & _SECRET_WORDS)


class Redactor:
    """Redacts text and data; built from an environment (default: ``os.environ`` now)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        values = {
            v
            for k, v in env.items()
            if secret_name(k)
            and k not in _NOT_SECRET_ENV
            and len(v) >= _MIN_ENV_VALUE
            and v.lower() not in _TRIVIAL
        }
        # longest first, so a value that contains another is replaced whole
        self._values = sorted(values, key=len, reverse=True)

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by ``[redacted]``."""
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        if "://" in text:
            text = _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
        if "Bearer" in text or "Basic" in text or "Token" in text:
            text = _BEARER.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
        if "=" in text or ":" in text or "-" in text:
            text = _ASSIGN.sub(_assignment, text)
        return text

    def data(self, data: Any) -> Any:
        """A copy of JSON-like ``data`` with secret-named keys' values and secrets in strings
        redacted."""
        if isinstance(data, Mapping):
            out: dict[Any, Any] = {}
            for key, value in data.items():
                if isinstance(key, str) and secret_name(key) and _scalar_secret(value):
                    out[key] = REDACTED
                else:
                    out[key] = self.data(value)
            return out
        if isinstance(data, list | tuple):
            return [self.data(item) for item in data]
        if isinstance(data, str):
            return self.text(data)
        return data


def _scalar_secret(value: Any) -> bool:
    """Only a string is a secret to hide (counts and flags stay readable), and not an empty
    one or a literal such as ``none`` or ``false``."""
    return isinstance(value, str) and value not in ("", REDACTED) and not _LITERAL.fullmatch(value)


def _assignment(match: re.Match[str]) -> str:
    name = match["name"]
    if not secret_name(name) or match["value"] in (REDACTED, "Bearer", "Basic", "Token"):
        return match[0]
    if not name.startswith("-"):
        if match["sep"].strip() == "":
            return match[0]  # "word value" is prose unless the word is a --flag
        words = [w.lower() for w in _WORD.findall(name)]
        if len(words) < 2 and not set(words) & _STRONG_WORDS:
            return match[0]  # "key: v1/instances/..." names a key, it does not hold one
        if not match["quote"] and _declared(match["value"]):
            return match[0]  # "api_key: str = None" declares a parameter, it holds nothing
    return f"{name}{match['sep']}{match['quote']}{REDACTED}"


def _declared(value: str) -> bool:
    """Whether an unquoted value is a literal (None, a number, a boolean) or a type
    annotation (no digits; short, or with brackets) rather than a secret."""
    if _LITERAL.fullmatch(value):
        return True
    if any(c.isdigit() for c in value) or not _ANNOTATION.fullmatch(value):
        return False
    return len(value) < 16 or "[" in value


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` with secrets redacted (see the module docs)."""
    return Redactor(env).text(text)


def redact_data(data: Any, env: Mapping[str, str] | None = None) -> Any:
    """JSON-like ``data`` with secrets redacted (see the module docs)."""
    return Redactor(env).data(data)
