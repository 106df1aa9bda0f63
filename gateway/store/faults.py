"""Which Redis failures mean "the store is down or busy" and which mean "this call is wrong".

A connection error, a timeout, or a reply such as OOM, READONLY or LOADING says nothing about
the call: retry it later (the journal spills, the limiter applies `rate_limit_fail_open`). Any
other error reply (WRONGTYPE, a script's own error) is about the call itself: a bug path that
retrying will not cure (the journal splits the batch, the limiter refuses with 503).
"""

from __future__ import annotations

import re

from redis.exceptions import RedisError, ResponseError

_STORE_WIDE = re.compile(
    r"\b(OOM|READONLY|LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|MISCONF|NOREPLICAS|NOPERM)\b"
)


def store_wide(exc: BaseException) -> bool:
    """True when `exc` means Redis cannot serve any call now (not this call's fault)."""
    if not isinstance(exc, RedisError | OSError):
        return False
    return not isinstance(exc, ResponseError) or bool(_STORE_WIDE.search(str(exc)))
