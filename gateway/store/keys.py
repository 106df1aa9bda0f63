"""Every Redis key and channel name the gateway uses, in one place (see `docs/redis.md`).

Keys that belong to one account carry the account as a hash tag (`{3141-5926-5359}`), so a
command, transaction or script that touches several of them lands in one Redis Cluster slot.
Keys touched alone (a key record, a domain record) carry their own tag.
"""

from __future__ import annotations

PREFIX = "gw"

#: Set of every account that has at least one client.
ACCOUNTS = f"{PREFIX}:accounts"

#: Pub/sub channel on which record changes are announced to every gateway instance.
INVALIDATION_CHANNEL = f"{PREFIX}:invalidate"

#: Every journal key shares the hash tag `{journal}`: one script writes a record to the global
#: stream, its account's stream and its request-id index atomically (see `docs/journal.md`).
JOURNAL_TAG = "{journal}"

#: The global journal stream (one entry per answered request).
JOURNAL_STREAM = f"{PREFIX}:{JOURNAL_TAG}:all"

#: Account name used in journal keys for requests that never resolved to a tenant.
JOURNAL_NO_ACCOUNT = "-"


def journal_account_stream(account: str | None) -> str:
    """One account's journal stream (same entry ids as the global one)."""
    return f"{PREFIX}:{JOURNAL_TAG}:account:{account or JOURNAL_NO_ACCOUNT}"


def journal_request_index(request_id: str) -> str:
    """String `<write token> <stream id>`: where the latest record of a request id is."""
    return f"{PREFIX}:{JOURNAL_TAG}:request:{request_id}"


def client(account: str, name: str) -> str:
    """JSON client record."""
    return f"{PREFIX}:{{{account}}}:client:{name}"


def account_clients(account: str) -> str:
    """Set of the client names of one account."""
    return f"{PREFIX}:{{{account}}}:clients"


def api_key(key_id: str) -> str:
    """JSON API-key record (holds the key's HMAC, never the key)."""
    return f"{PREFIX}:key:{{{key_id}}}"


def account_keys(account: str) -> str:
    """Set of the key ids of one account."""
    return f"{PREFIX}:{{{account}}}:keys"


def domain(hostname: str) -> str:
    """JSON custom-domain record."""
    return f"{PREFIX}:domain:{{{hostname}}}"


def client_domains(account: str, name: str) -> str:
    """Set of the custom hostnames of one client."""
    return f"{PREFIX}:{{{account}}}:client:{name}:domains"


# Invalidation messages: `<kind>:<id>`; `*` clears every cache.
def invalidation_client(account: str, name: str) -> str:
    return f"client:{account}/{name}"


def invalidation_key(key_id: str) -> str:
    return f"key:{key_id}"


def invalidation_domain(hostname: str) -> str:
    return f"domain:{hostname}"


# Rate limits, budgets and usage (see `docs/limits.md`). Every key of one request's check is
# tagged with the account, so the check script and the settle script touch a single slot.
# `scope` is `client:<name>` or `key:<key id>`.
def limit_requests(account: str, scope: str) -> str:
    """Sorted set: one member per admitted request, scored by admission time (ms)."""
    return f"{PREFIX}:{{{account}}}:rl:{scope}:rpm"


def limit_tokens(account: str, scope: str) -> str:
    """Sorted set: one member per token reservation, scored by reservation time (ms)."""
    return f"{PREFIX}:{{{account}}}:rl:{scope}:tpm"


def limit_token_amounts(account: str, scope: str) -> str:
    """Hash: reservation member -> tokens, plus `_sum`, the tokens inside the window."""
    return f"{PREFIX}:{{{account}}}:rl:{scope}:tpm:amt"


def limit_in_flight(account: str, scope: str) -> str:
    """Sorted set: one member per request in flight, scored by its lease deadline (ms)."""
    return f"{PREFIX}:{{{account}}}:rl:{scope}:conc"


def budget_day(account: str, scope: str, day: str) -> str:
    """Integer: tokens used (and reserved) on `day` (YYYYMMDD, UTC)."""
    return f"{PREFIX}:{{{account}}}:rl:{scope}:tpd:{day}"


def budget_month(account: str, scope: str, month: str) -> str:
    """Integer: tokens used (and reserved) in `month` (YYYYMM, UTC)."""
    return f"{PREFIX}:{{{account}}}:rl:{scope}:tpmo:{month}"


def usage_day(account: str, day: str) -> str:
    """Hash of one account's usage on `day` (YYYYMMDD, UTC):
    `<counter>|<client>|<key id>|<model>` -> integer, counter in `req`, `pt`, `ct`."""
    return f"{PREFIX}:{{{account}}}:usage:{day}"


def client_health(account: str, name: str) -> str:
    """Hash: gateway instance -> JSON of its outlier ejections of the client's deployments."""
    return f"{PREFIX}:{{{account}}}:health:{name}"
