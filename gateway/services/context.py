"""Who is acting, and the checks every service function makes before it reads or writes.

operator        GATEWAY_ADMIN_TOKEN or the CLI: every account, every action
scoped token    one account: its own resources only; another account's answer 404 (their
                existence is not revealed); no account creation, no prices, no changes to
                its own account's limits; a read-only token writes nothing (403)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from redis.asyncio import Redis

from gateway.errors import NotFoundError, PermissionDeniedError
from gateway.store.audit import AuditEntry, AuditLog


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """`account` None: the operator."""

    via: str
    token_id: str | None = None
    account: str | None = None
    read_only: bool = False

    @property
    def is_operator(self) -> bool:
        return self.account is None

    @property
    def name(self) -> str:
        return "operator" if self.token_id is None else f"token:{self.token_id}"


OPERATOR_CLI = Actor(via="cli")
OPERATOR_API = Actor(via="api")


@dataclasses.dataclass(frozen=True, slots=True)
class AdminContext:
    redis: Redis
    actor: Actor
    api_domain: str
    secret: str = ""

    def see(self, account: str, what: str = "account") -> None:
        """404 unless the actor may see `account` (the same answer as a missing one)."""
        if self.actor.account is not None and self.actor.account != account:
            message = f"no account {account}" if what == "account" else f"no such {what}"
            raise NotFoundError(message, code=f"{what}_not_found")

    def owns(self, record_account: str, message: str, code: str) -> None:
        """404 for a record looked up by id that is another account's: the same answer as
        for a missing id, naming neither that account nor that the id exists."""
        if self.actor.account is not None and self.actor.account != record_account:
            raise NotFoundError(message, code=code)

    def write(self, account: str | None, what: str = "account") -> None:
        """`see`, then 403 for a read-only token."""
        if account is not None:
            self.see(account, what)
        if self.actor.read_only:
            raise PermissionDeniedError(
                "this admin token is read-only", code="read_only_admin_token"
            )

    def operator_only(self, action: str) -> None:
        if self.actor.read_only or not self.actor.is_operator:
            raise PermissionDeniedError(
                f"only the operator token can {action}", code="operator_only"
            )

    def visible_accounts(self, requested: str | None) -> str | None:
        """The account filter a listing uses: a scoped actor's own, whatever was asked."""
        if requested is not None:
            self.see(requested)
        return self.actor.account or requested

    async def audit(
        self,
        action: str,
        *,
        account: str | None,
        target: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        await AuditLog(self.redis).append(
            AuditEntry(
                actor=self.actor.name,
                via=self.actor.via,
                action=action,
                account=account,
                target=target,
                before=before,
                after=after,
            )
        )
