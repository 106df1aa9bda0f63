"""Every exception of the gateway, in one tree. GatewayErrors render as an API error body.

    GatewayError                     (500, api_error) answered to the caller in its API's shape
    ├── ConfigError                  settings or environment are wrong (CLI exit 1)
    ├── NotFoundError                (404) unknown host, record or route
    ├── RecordInUseError             (409) a record others still depend on
    ├── AuthenticationError          (401) missing, malformed, unknown, revoked or expired key
    ├── PermissionDeniedError        (403) a valid key that may not use this client
    ├── InvalidRequestError          (400) bad JSON, wrong types, missing fields
    │   └── DomainVerificationError  (400) a custom domain's TXT challenge is not there
    ├── MethodNotAllowedError        (405)
    ├── RequestTimeoutError          (408) the body did not arrive within `body_timeout`
    ├── PayloadTooLargeError         (413)
    ├── UnsupportedMediaTypeError    (415)
    ├── RecordExistsError            (409) the CLI or admin API would overwrite a record
    ├── RateLimitError               (429) a request, token or concurrency limit is reached
    ├── QuotaExceededError           (429) a token budget (per day or month) is used up
    ├── UpstreamError                (502) the upstream could not be reached or answered nonsense
    │   └── UpstreamTimeoutError     (504)
    └── ServiceUnavailableError      (503) Redis or another dependency is down
    PolicyError (ValueError)         a policy document or flag is malformed (CLI exit 1)
    FilterError (ValueError)         a journal filter cannot be used (CLI exit 2, admin 400)
    PluginRefusedError               a tool plugin's request was refused before it was sent
    ToolFailedError                  a tool ran but gave no answer (the model is told, not the
                                     tenant: neither ever fails a request)

`code` is a stable machine-readable string; `message` is for people. Handlers raise these and the
request middleware renders them, so SDKs raise their usual exceptions (`openai.NotFoundError`, ...).
Client-library errors from upstreams become UpstreamErrors in one place:
`gateway.upstream.errors.upstream_errors`.
"""

from __future__ import annotations

from typing import Any

import orjson


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    status: int = 500
    error_type: str = "api_error"
    default_code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.code, self.param)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_body())


def error_body(
    message: str, error_type: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


class ConfigError(GatewayError):
    default_code = "config_error"


class NotFoundError(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class RecordInUseError(GatewayError):
    status = 409
    error_type = "invalid_request_error"
    default_code = "record_in_use"


class AuthenticationError(GatewayError):
    status = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    error_type = "invalid_request_error"
    default_code = "permission_denied"


class InvalidRequestError(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class MethodNotAllowedError(GatewayError):
    status = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class RequestTimeoutError(GatewayError):
    status = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class PayloadTooLargeError(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class UnsupportedMediaTypeError(GatewayError):
    status = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class UpstreamError(GatewayError):
    status = 502
    error_type = "api_error"
    default_code = "upstream_error"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    default_code = "upstream_timeout"


class ServiceUnavailableError(GatewayError):
    status = 503
    error_type = "api_error"
    default_code = "service_unavailable"


class RateLimitError(GatewayError):
    """A limit is reached; `kind` is OpenAI's error type: `requests` or `tokens`."""

    status = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, kind: str = "requests", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.error_type = kind


class QuotaExceededError(GatewayError):
    status = 429
    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class RecordExistsError(GatewayError):
    status = 409
    error_type = "invalid_request_error"
    default_code = "already_exists"


class DomainVerificationError(InvalidRequestError):
    default_code = "domain_not_verified"


class PolicyError(ValueError):
    """A policy document or flag is malformed (the CLI reports it, exit 1)."""


class FilterError(ValueError):
    """A filter value that cannot be used (the message says why)."""


class PluginRefusedError(Exception):
    """The plugin's request was refused before anything was sent."""


class ToolFailedError(Exception):
    """The tool ran but could not produce an answer."""
