"""Checking the fields of an admin write, from the CLI's parsed flags or an API body alike.

Each kind names what a value may be; a wrong one is a 400 naming the field (`param`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from gateway.errors import InvalidRequestError
from gateway.limits.checks import MAX_LIMIT

Kind = Literal["count", "usd", "text", "texts", "flag"]

#: Limits shared by accounts, clients and keys (docs/limits.md).
LIMITS: dict[str, Kind] = {
    "rpm": "count",
    "tpm": "count",
    "max_concurrent": "count",
    "tokens_per_day": "count",
    "tokens_per_month": "count",
    "usd_per_day": "usd",
    "usd_per_month": "usd",
}
END_USER_LIMITS: dict[str, Kind] = {"end_user_rpm": "count", "end_user_usd_per_day": "usd"}
_MAX_TEXT = 2000
#: The most US dollars a budget may name: 10^9 dollars is 10^15 micro-dollars, under the 2^53
#: the limits script counts exactly.
MAX_USD = MAX_LIMIT / 1_000_000


def _bad(name: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(f"{name}: {what}", param=name, code="invalid_field")


def check_value(name: str, kind: Kind, value: Any) -> Any:
    if kind in ("count", "usd") and value is None:
        return None  # removes the limit
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(name, "must be a whole number >= 0, or null to remove the limit")
        if value > MAX_LIMIT:  # the limits script counts exactly up to 2^53 only
            raise _bad(name, f"is larger than a limit's most, {MAX_LIMIT}")
        return value
    if kind == "usd":
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise _bad(name, "must be a number of US dollars >= 0, or null to remove it")
        if value > MAX_USD:  # micro-dollars in the limits script stay below 2^53
            raise _bad(name, f"is larger than a dollar limit's most, {MAX_USD:g}")
        return float(value)
    if kind == "flag":
        if not isinstance(value, bool):
            raise _bad(name, "must be true or false")
        return value
    if kind == "texts":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise _bad(name, "must be a list of strings")
        return tuple(value)
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _bad(name, f"must be a string of at most {_MAX_TEXT} characters")
    return value


def check_fields(
    data: Mapping[str, Any], allowed: Mapping[str, Kind], *, what: str
) -> dict[str, Any]:
    """`data` checked against `allowed`; an unknown field is an error (a typo must not pass)."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidRequestError(
            f"{what} has no field {unknown[0]!r}; fields: {', '.join(sorted(allowed))}",
            param=unknown[0],
            code="unknown_field",
        )
    return {name: check_value(name, allowed[name], value) for name, value in data.items()}
