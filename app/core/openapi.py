"""The OpenAPI document, plus request schemas of routes that read their body raw.

A route that must see the exact bytes (signed batches) cannot declare a pydantic body; it
names its schema with :func:`request_body` and the models land in ``components/schemas``.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"
_models: list[type[BaseModel]] = []


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is read raw but has the shape of ``model``."""
    _models.append(model)
    ref = {"$ref": _REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in _models:
            schema = model.model_json_schema(ref_template=_REF)
            for name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas.setdefault(model.__name__, schema)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace the document
