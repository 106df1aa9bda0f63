"""Which end user a request is for: the header, then `safety_identifier`, then `user`."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.end_users import MAX_END_USER, end_user_of


@pytest.mark.parametrize(
    ("headers", "data", "expected"),
    [
        ({}, {}, None),
        ({}, None, None),
        ({}, {"user": "u-1"}, "u-1"),
        ({}, {"user": "u-1", "safety_identifier": "s-1"}, "s-1"),
        ({"X-Gateway-End-User": "h-1"}, {"user": "u-1", "safety_identifier": "s-1"}, "h-1"),
        ({"x-gateway-end-user": "  "}, {"user": "u-1"}, "u-1"),
        ({}, {"user": 42}, None),
        ({}, {"user": ["a"], "safety_identifier": None}, None),
        ({}, {"user": ""}, None),
        ({}, {"user": "x" * 1000}, "x" * MAX_END_USER),
    ],
)
def test_end_user_of(
    headers: dict[str, str], data: dict[str, Any] | None, expected: str | None
) -> None:
    assert end_user_of(CIMultiDict(headers), data) == expected
