"""A client for the admin REST API that validates every answer against the live OpenAPI
document (`/admin/v1/openapi.json`), and records which operations a test exercised."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_DOC_URI = "urn:gateway-admin-openapi"


@dataclasses.dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class AdminApi:
    def __init__(self, client: TestClient[Any, Any], document: dict[str, Any]) -> None:
        self.client = client
        self.document = document
        self.registry: Registry[Any] = Registry().with_resource(
            _DOC_URI, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.exercised: set[tuple[str, str, int]] = set()

    @classmethod
    async def open(cls, client: TestClient[Any, Any]) -> AdminApi:
        response = await client.get("/admin/v1/openapi.json")
        assert response.status == 200
        return cls(client, await response.json())

    def schema_for(self, template: str, method: str, status: int) -> dict[str, Any]:
        operation = self.document["paths"][template][method.lower()]
        response = operation["responses"][str(status)]
        schema: dict[str, Any] = response["content"]["application/json"]["schema"]
        return schema

    async def call(
        self,
        method: str,
        template: str,
        token: str,
        *,
        body: Any = None,
        query: Any = None,
        **params: str,
    ) -> Answer:
        path = template.format(**{k: quote(v, safe="") for k, v in params.items()})
        response = await self.client.request(
            method,
            "/admin/v1" + path,
            json=body,
            params=query,
            headers={"Authorization": f"Bearer {token}"},
        )
        answer = Answer(response.status, await response.json(), dict(response.headers))
        schema = self.schema_for(template, method, response.status)
        ref = schema["$ref"].replace("#", _DOC_URI + "#", 1)
        Draft202012Validator({"$ref": ref}, registry=self.registry).validate(answer.body)
        self.exercised.add((template, method.lower(), response.status))
        return answer

    def operations(self) -> set[tuple[str, str]]:
        return {
            (path, method)
            for path, item in self.document["paths"].items()
            for method in item
            if method != "parameters"
        }
