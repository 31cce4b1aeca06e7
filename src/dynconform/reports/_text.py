"""Escaping for every writer: text from the system under test is data, never markup.

Model names, error messages, metric labels and API paths reach reports from outside; each
writer passes them through the escape of its format, so that ``<script>``, ``|`` or a
backtick in a model name is shown as written and cannot break a table or inject markup::

    escape("<b>|x|</b>", "markdown")   # '&lt;b&gt;\\|x\\|&lt;/b&gt;'
    escape("<b>", "html")              # '&lt;b&gt;'
"""

from __future__ import annotations

import html
import re
from typing import Literal

__all__ = [
    "ESCAPE_FORMATS",
    "code_block",
    "escape",
    "escape_annotation",
    "escape_html",
    "escape_markdown",
    "one_line",
    "truncate",
]

EscapeFormat = Literal["html", "markdown", "github", "github-property"]
ESCAPE_FORMATS: tuple[EscapeFormat, ...] = ("html", "markdown", "github", "github-property")

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
#: what starts a heading, list, quote or thematic break at the start of a line
_MD_LEADING = re.compile(r"^(#{1,6}|[-+*=]|\d{1,9}[.)])(?=\s|$)")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` with control characters dropped and whitespace runs folded to one space."""
    return _SPACE.sub(" ", _CONTROL.sub("", text)).strip()


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def escape_html(text: str) -> str:
    """Text for HTML element content or a quoted attribute value."""
    return html.escape(_CONTROL.sub("", text), quote=True)


def escape_markdown(text: str) -> str:
    """Text for one line of GitHub-flavoured Markdown, a table cell included: HTML is
    entity-escaped, Markdown punctuation and ``|`` backslash-escaped, newlines folded."""
    flat = one_line(text)
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    flat = _MD_SPECIAL.sub(r"\\\1", flat)
    return _MD_LEADING.sub(lambda m: m[0][:-1] + "\\" + m[0][-1], flat)


def escape_annotation(text: str, *, prop: bool = False) -> str:
    """Text for a GitHub Actions workflow command: the message (``prop=False``) or a
    property value such as ``title`` (``:`` and ``,`` escaped too)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def escape(text: str, fmt: EscapeFormat = "html") -> str:
    """Escape ``text`` for ``fmt``: ``html``, ``markdown``, ``github`` (an annotation message)
    or ``github-property`` (an annotation property value)."""
    if fmt == "html":
        return escape_html(text)
    if fmt == "markdown":
        return escape_markdown(text)
    if fmt == "github":
        return escape_annotation(text)
    if fmt == "github-property":
        return escape_annotation(text, prop=True)
    raise ValueError(f"unknown escape format {fmt!r} (known: {', '.join(ESCAPE_FORMATS)})")


def code_block(text: str, language: str = "") -> str:
    """A fenced Markdown code block that ``text`` cannot close (the fence is longer than any
    run of backticks inside)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"
