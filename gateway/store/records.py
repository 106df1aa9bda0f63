"""The records kept in Redis, as frozen dataclasses with JSON (de)serialisation.

Unknown fields in stored JSON are ignored, so gateways of two versions can share one Redis
during a rolling upgrade.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Self

import orjson

from gateway.rewrite import ClientPolicy


def _from_mapping(cls: type[Any], data: dict[str, Any]) -> Any:
    names = {field.name for field in dataclasses.fields(cls)}
    # JSON has no tuples: every list-valued field of a record is a tuple.
    kwargs = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in data.items()
        if key in names
    }
    return cls(**kwargs)


class _JsonRecord:
    """JSON round trip shared by the record classes."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"stored {cls.__name__} is not a JSON object")
        record: Self = _from_mapping(cls, data)
        return record


@dataclasses.dataclass(frozen=True, slots=True)
class ClientRecord(_JsonRecord):
    """A tenant's client: where its traffic goes and who may call it from a browser."""

    account: str
    name: str
    provider: str
    upstream_url: str = ""
    upstream_key_env: str = ""
    upstream_key: str = ""
    cors_origins: tuple[str, ...] = ()
    created_at: float = dataclasses.field(default_factory=time.time)
    # Limits (docs/limits.md); None: no limit.
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    #: Rewrite rules (see `gateway.rewrite`); stored as a JSON object.
    policy: ClientPolicy = dataclasses.field(default_factory=ClientPolicy)

    def __post_init__(self) -> None:
        if isinstance(self.policy, dict):  # read back from JSON
            object.__setattr__(self, "policy", ClientPolicy.from_stored(self.policy))

    def hostname(self, api_domain: str) -> str:
        return f"{self.name}.{self.account}.{api_domain}"

    def public_dict(self, api_domain: str) -> dict[str, Any]:
        """The record as shown to operators: the stored upstream key is never printed."""
        data = self.to_dict()
        data["upstream_key"] = "***" if self.upstream_key else ""
        data["hostname"] = self.hostname(api_domain)
        data["policy"] = self.policy.public_dict()
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKeyRecord(_JsonRecord):
    """An API key, stored as an HMAC of the key; the key itself is never stored."""

    id: str
    account: str
    name: str
    hash: str
    clients: tuple[str, ...] = ()
    created_at: float = dataclasses.field(default_factory=time.time)
    expires_at: float | None = None
    revoked_at: float | None = None
    # Limits (docs/limits.md); None: no limit.
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None

    def allows_client(self, client_name: str) -> bool:
        return not self.clients or client_name in self.clients

    def is_active(self, now: float) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def public_dict(self) -> dict[str, Any]:
        data = self.to_dict()
        del data["hash"]
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class DomainRecord(_JsonRecord):
    """A custom hostname a client claims; it routes only once `verified`."""

    hostname: str
    account: str
    client: str
    token: str
    verified: bool = False
    created_at: float = dataclasses.field(default_factory=time.time)
    verified_at: float | None = None
