"""Reading the audit stream: the operator sees every record, a scoped token its account's."""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequestError
from gateway.services.context import AdminContext
from gateway.store.audit import AuditLog

MAX_LIMIT = 1000


async def audit_tail(
    ctx: AdminContext, limit: int = 50, account: str | None = None
) -> list[dict[str, Any]]:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be 1 to {MAX_LIMIT}", param="limit")
    return await AuditLog(ctx.redis).tail(limit, ctx.visible_accounts(account))
