"""Who the tenant's own user is: the end user a request is made for (docs/limits.md).

A tenant names its end user with the `x-gateway-end-user` header (its backend sets it), or with
OpenAI's body fields `safety_identifier` or `user`; the first one present wins, in that order.
The id is the tenant's string, kept as sent (cut to `MAX_END_USER` characters): it is recorded
on the journal record as `end_user`, broken out in usage, and limited per client
(`end_user_rpm`, `end_user_usd_per_day`), where Redis keys name it only by a digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

END_USER_HEADER = "x-gateway-end-user"
BODY_FIELDS = ("safety_identifier", "user")
MAX_END_USER = 256


def end_user_of(headers: Mapping[str, str], data: Mapping[str, Any] | None) -> str | None:
    value = (headers.get(END_USER_HEADER) or "").strip()
    if not value and data is not None:
        for name in BODY_FIELDS:
            field = data.get(name)
            if isinstance(field, str) and field.strip():
                value = field.strip()
                break
    return value[:MAX_END_USER] or None
