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

# The journal (see `docs/journal.md`). The global stream is spread over `journal_shards` shard
# streams, each with its own hash tag `{journal:<n>}` (so the shards spread over a cluster's
# masters); a record goes to the shard its request id hashes to, beside its request-id index.
# Each account's stream carries the account's tag, beside an account-scoped request-id index.
# Shard names do not depend on the shard count.

#: Account name used in journal keys for requests that never resolved to a tenant.
JOURNAL_NO_ACCOUNT = "-"


def journal_shard_tag(shard: int) -> str:
    return f"{{journal:{shard}}}"


def journal_shard_stream(shard: int) -> str:
    """One shard of the global journal stream."""
    return f"{PREFIX}:{journal_shard_tag(shard)}:all"


def journal_shard_index(shard: int, request_id: str) -> str:
    """String `<write token> <entry id>`: the latest record of a request id in its shard."""
    return f"{PREFIX}:{journal_shard_tag(shard)}:request:{request_id}"


def journal_account_stream(account: str | None) -> str:
    """One account's journal stream, on the account's hash tag (its own entry ids)."""
    return f"{PREFIX}:{{{account or JOURNAL_NO_ACCOUNT}}}:journal"


def journal_account_index(account: str | None, request_id: str) -> str:
    """String `<write token> <entry id>`: where the account stream holds a request id."""
    return f"{PREFIX}:{{{account or JOURNAL_NO_ACCOUNT}}}:journal:request:{request_id}"


#: The first layout (schema v1 gateways): every journal key in the one `{journal}` slot. Never
#: written any more; readers still merge these streams in, so older records stay readable.
LEGACY_JOURNAL_TAG = "{journal}"
LEGACY_JOURNAL_STREAM = f"{PREFIX}:{LEGACY_JOURNAL_TAG}:all"


def legacy_journal_account_stream(account: str | None) -> str:
    return f"{PREFIX}:{LEGACY_JOURNAL_TAG}:account:{account or JOURNAL_NO_ACCOUNT}"


def legacy_journal_request_index(request_id: str) -> str:
    return f"{PREFIX}:{LEGACY_JOURNAL_TAG}:request:{request_id}"


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


def account(account: str) -> str:
    """JSON account record (name and account-wide limits)."""
    return f"{PREFIX}:{{{account}}}:account"


#: Hash of the global price overrides: model -> JSON price record.
PRICES = f"{PREFIX}:prices"


def account_prices(account: str) -> str:
    """Hash of one account's price overrides: `<client or *>|<model>` -> JSON price record."""
    return f"{PREFIX}:{{{account}}}:prices"


def admin_token(token_id: str) -> str:
    """JSON admin-token record (holds the token's HMAC, never the token)."""
    return f"{PREFIX}:admintoken:{{{token_id}}}"


#: Set of every admin-token id.
ADMIN_TOKENS = f"{PREFIX}:admintokens"

#: Stream of audit records, one per admin write (CLI or API); admin writes are rare, so one
#: stream (one slot) is enough, capped at `AUDIT_MAX_LEN` entries.
AUDIT_STREAM = f"{PREFIX}:audit"
AUDIT_MAX_LEN = 100_000


# Invalidation messages: `<kind>:<id>`; `*` clears every cache.
def invalidation_client(account: str, name: str) -> str:
    return f"client:{account}/{name}"


def invalidation_key(key_id: str) -> str:
    return f"key:{key_id}"


def invalidation_domain(hostname: str) -> str:
    return f"domain:{hostname}"


def invalidation_account(account: str) -> str:
    return f"account:{account}"


def invalidation_prices(account: str | None) -> str:
    return f"prices:{account or '*'}"


# Rate limits, budgets and usage (see `docs/limits.md`). Every key of one request's check is
# tagged with the account, so the check script and the settle script touch a single slot.
# `scope` is `account`, `client:<name>`, `key:<key id>` or `user:<client>:<end-user digest>`.
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


def budget_usd_day(account: str, scope: str, day: str) -> str:
    """Integer: micro-dollars used (and reserved) on `day` (YYYYMMDD, UTC)."""
    return f"{PREFIX}:{{{account}}}:rl:{scope}:usd:d:{day}"


def budget_usd_month(account: str, scope: str, month: str) -> str:
    """Integer: micro-dollars used (and reserved) in `month` (YYYYMM, UTC)."""
    return f"{PREFIX}:{{{account}}}:rl:{scope}:usd:m:{month}"


def usage_end_users_day(account: str, day: str) -> str:
    """Hash of one account's usage by end user on `day`:
    `<counter>|<client>|<model>|<end user>` -> integer, counters as in `usage_day`."""
    return f"{PREFIX}:{{{account}}}:usage:eu:{day}"


def usage_day(account: str, day: str) -> str:
    """Hash of one account's usage on `day` (YYYYMMDD, UTC):
    `<counter>|<client>|<key id>|<model>` -> integer, counter in `req`, `pt`, `ct`, and `cu`
    (cost, micro-dollars)."""
    return f"{PREFIX}:{{{account}}}:usage:{day}"


def client_health(account: str, name: str) -> str:
    """Hash: gateway instance -> JSON of its outlier ejections of the client's deployments."""
    return f"{PREFIX}:{{{account}}}:health:{name}"
