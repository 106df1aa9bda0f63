"""Typed readers for request JSON: a wrong type is a 400 naming the field, never a 500.

`param` is the field's path as OpenAI names it in errors (`messages[2].content[0].image_url`).
"""

from __future__ import annotations

from typing import Any, NoReturn

from gateway.errors import InvalidRequestError


def refuse(param: str, why: str) -> NoReturn:
    """The field has no counterpart in the other API (or a value the other API cannot take)."""
    raise InvalidRequestError(f"{param}: {why}", param=param, code="unsupported_parameter")


def invalid(param: str, why: str) -> NoReturn:
    raise InvalidRequestError(f"{param}: {why}", param=param, code="invalid_value")


def expect_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        invalid(param, "must be an object")
    return value


def expect_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        invalid(param, "must be an array")
    return value


def expect_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        invalid(param, "must be a string")
    return value


def expect_bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        invalid(param, "must be a boolean")
    return value


def expect_int(value: Any, param: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        invalid(param, "must be an integer")
    if value < minimum:
        invalid(param, f"must be at least {minimum}")
    return value


def expect_number(value: Any, param: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        invalid(param, "must be a number")
    if not low <= value <= high:
        invalid(param, f"must be between {low:g} and {high:g}")
    return float(value)


def check_keys(data: dict[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    """Refuse the first key (in sorted order, so the error is stable) outside `allowed`."""
    for key in sorted(data):
        if key not in allowed:
            refuse(prefix + key, "has no equivalent in the upstream's API")
