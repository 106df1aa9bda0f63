"""The `azure` provider: Azure OpenAI, a rewrite of the OpenAI passthrough.

Azure addresses a *deployment*, not a model: the client's `upstream_url` is the resource
endpoint (`https://NAME.openai.azure.com`), the deployment is the request's model after the
policy's aliases (so `--alias fast=my-gpt4o-deployment`), every URL carries the policy's
`azure_api_version`, and the key goes in an `api-key` header instead of `Authorization`:

    POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version={version}
    POST {endpoint}/openai/deployments/{deployment}/completions|embeddings?api-version=...
    POST {endpoint}/openai/responses?api-version=...        (deployment in the body's model)
    GET  {endpoint}/openai/models?api-version=...

The body is forwarded as for OpenAI (byte for byte when no policy rule changed it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from gateway.errors import InvalidRequestError
from gateway.handlers.openai import OpenAIPassthrough
from gateway.protocols import HandlerDependencies, Provider
from gateway.store.records import ClientRecord

_BY_DEPLOYMENT = frozenset({"/chat/completions", "/completions", "/embeddings"})


class AzureOpenAI(OpenAIPassthrough):
    def url(self, client: ClientRecord, base: str, path: str, data: dict[str, Any] | None) -> str:
        query = urlencode({"api-version": client.policy.azure_api_version})
        base = base.rstrip("/").removesuffix("/openai")
        if path not in _BY_DEPLOYMENT:
            return f"{base}/openai{path}?{query}"
        model = (data or {}).get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequestError("you must provide a model parameter", param="model")
        return f"{base}/openai/deployments/{quote(model, safe='')}{path}?{query}"

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        return [("api-key", key)]


def create_azure_handler(deps: HandlerDependencies) -> Provider:
    return AzureOpenAI(deps.transport).provider("azure")
