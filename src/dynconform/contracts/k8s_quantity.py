"""Strict parser for Kubernetes resource quantities (``500m``, ``2Gi``, ``1e3``, ``10``).

Follows the grammar of ``k8s.io/apimachinery/pkg/api/resource``::

    quantity      ::= signed-number suffix
    suffix        ::= binary-SI | decimal-exponent | decimal-SI
    binary-SI     ::= Ki | Mi | Gi | Ti | Pi | Ei
    decimal-SI    ::= m | "" | k | M | G | T | P | E
    decimal-exp   ::= "e" signed-number | "E" signed-number   (an integer exponent)
    signed-number ::= [+-] (digits | digits "." digits | digits "." | "." digits)

Values are returned exactly, as :class:`fractions.Fraction`.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["QuantityError", "parse_quantity"]

_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exp>[+-]?\d+)|(?P<decimal>[mkMGTPE]?))"
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
#: Kubernetes limits the exponent's magnitude; anything larger cannot be represented.
_MAX_EXPONENT = 1 << 10


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity."""


def parse_quantity(value: object) -> Fraction:
    """The exact value of a quantity given as a string, or as a YAML integer or float.

    Raises :class:`QuantityError` for anything Kubernetes would reject: other types (booleans
    included), empty strings, spaces, unknown suffixes such as ``2GB`` or ``500mi``.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QuantityError(f"{value!r} is not a quantity (expected a string or a number)")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QuantityError(f"{value!r} is not a finite number")
        return Fraction(repr(value))
    if isinstance(value, int):
        return Fraction(value)
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2Gi, 1.5, 1e3)")
    number = Fraction(match["number"])
    if match["sign"] == "-":
        number = -number
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["exp"] is not None:
        exponent = int(match["exp"])
        if abs(exponent) > _MAX_EXPONENT:
            raise QuantityError(f"{value!r}: exponent out of range")
        return number * Fraction(10) ** exponent
    return number * _DECIMAL[match["decimal"]]
