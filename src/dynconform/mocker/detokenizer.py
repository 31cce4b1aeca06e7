"""Incremental detokenization: the text of a token stream, one delta at a time.

A byte-level BPE token can hold part of a multi-byte UTF-8 character, so decoding the tokens
of each step on their own shows U+FFFD where a character is split. :class:`IncrementalDetokenizer`
uses the prefix-offset technique of Hugging Face's text-generation-inference and vLLM: it
decodes a short window of tokens (the last emitted ones, for context, plus the new ones) and
emits the text the new tokens add only once it does not end in an incomplete character::

    detokenizer = IncrementalDetokenizer(tokenizer)
    deltas = [detokenizer.add(chunk) for chunk in chunks] + [detokenizer.flush()]
    assert "".join(deltas) == tokenizer.decode(all_ids)

The deltas concatenate to exactly the text of decoding all tokens at once; each step costs a
decode of a few tokens, however long the output is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["REPLACEMENT", "Decode", "IncrementalDetokenizer"]

#: U+FFFD, what a decoder shows for bytes that are not (yet) a whole UTF-8 character.
REPLACEMENT = "\ufffd"

Decode = Callable[[Sequence[int]], str]


class IncrementalDetokenizer:
    """Turns the token ids of one output, as they arrive, into text deltas.

    ``decode`` is a tokenizer's decode (ids -> text), e.g. ``tokenizer.decode``; any
    detokenizer options (``skip_special_tokens``) belong to it.
    """

    __slots__ = ("_decode", "_prefix", "_read", "ids", "text")

    def __init__(self, decode: Decode) -> None:
        self._decode = decode
        #: every token id added so far
        self.ids: list[int] = []
        #: the text emitted so far (the concatenation of the deltas)
        self.text = ""
        self._prefix = 0  # start of the context window
        self._read = 0  # tokens before this index are emitted

    @property
    def pending(self) -> int:
        """How many tokens are held back (their text is not emitted yet)."""
        return len(self.ids) - self._read

    def add(self, token_ids: Sequence[int]) -> str:
        """Add generated tokens; returns the text they complete (may be empty)."""
        if not token_ids:
            return ""
        self.ids.extend(token_ids)
        return self._advance(final=False)

    def flush(self) -> str:
        """Emit whatever is held back, at the end of the output (an incomplete character
        becomes U+FFFD, as in decoding all tokens at once)."""
        return self._advance(final=True)

    def _advance(self, *, final: bool) -> str:
        ids = self.ids
        if self._read == len(ids):
            return ""
        context = self._decode(ids[self._prefix : self._read]) if self._read > self._prefix else ""
        window = self._decode(ids[self._prefix :])
        if not final and (len(window) <= len(context) or window.endswith(REPLACEMENT)):
            return ""  # nothing new yet, or the last character is still incomplete
        delta = window[len(context) :]
        self._prefix, self._read = self._read, len(ids)
        self.text += delta
        return delta
