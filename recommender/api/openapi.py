"""Swagger models generated from the pydantic payload models, so documentation and validation
cannot drift: each endpoint documents exactly the schema it validates with.

pydantic writes JSON Schema 2020-12; Swagger 2.0 (what flask-restx serves) keeps definitions
under `#/definitions/` by name, has one `example` per schema and takes draft 4's boolean
`exclusiveMinimum`/`exclusiveMaximum`, so names, examples and bounds are adapted.
"""

from __future__ import annotations

from typing import Any

from flask_restx import Api, Namespace
from flask_restx.model import SchemaModel
from pydantic import BaseModel, TypeAdapter

REF_PREFIX = "#/definitions/"
EXCLUSIVE_BOUNDS = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def json_schema(source: type[BaseModel] | TypeAdapter) -> dict[str, Any]:
    """The JSON schema of a pydantic model or type adapter, definitions named by title."""
    if isinstance(source, TypeAdapter):
        schema = source.json_schema(ref_template=REF_PREFIX + "{model}")
    else:
        schema = source.model_json_schema(ref_template=REF_PREFIX + "{model}")
    definitions = schema.pop("$defs", {})
    names = {key: sub.get("title", key) for key, sub in definitions.items()}
    renamed = {names[key]: _swagger(sub, names) for key, sub in definitions.items()}
    return {"definitions": renamed, **_swagger(schema, names)}


class GeneratedModel(SchemaModel):
    """A generated schema whose referenced models (`uses`) go into the spec with it."""

    def __init__(self, name: str, schema: dict, uses: list[SchemaModel]):
        super().__init__(name, schema)
        self.__parents__ = uses  # restx registers a model's parents with it

    @property
    def __schema__(self) -> dict:
        return self._schema  # as generated: the parents are references, not a base (allOf)


def register(ns: Namespace, source: type[BaseModel] | TypeAdapter) -> SchemaModel:
    """Register the schema (and every model it refers to) on `ns`; return its model."""
    schema = json_schema(source)
    parts = [ns.schema_model(name, sub) for name, sub in schema.pop("definitions").items()]
    return ns.add_model(schema["title"], GeneratedModel(schema["title"], schema, parts))


def _swagger(node: Any, names: dict[str, str]) -> Any:
    """`node` with references renamed and `examples` lists turned into one `example`."""
    if isinstance(node, list):
        return [_swagger(item, names) for item in node]
    if not isinstance(node, dict):
        return node
    adapted = {}
    for key, value in node.items():
        if key in EXCLUSIVE_BOUNDS and not isinstance(value, bool):
            adapted[EXCLUSIVE_BOUNDS[key]], adapted[key] = value, True
        elif key == "$ref" and value.startswith(REF_PREFIX):
            adapted[key] = REF_PREFIX + names.get(value[len(REF_PREFIX) :], value)
        elif key == "examples" and isinstance(value, list) and value:
            adapted["example"] = value[0]
        elif key == "properties":  # property names are data, not keywords
            adapted[key] = {name: _swagger(sub, names) for name, sub in value.items()}
        else:
            adapted[key] = _swagger(value, names)
    return adapted


class LinkedApi(Api):
    """An Api whose spec carries response links (`x-links`, Swagger 2.0's form of OpenAPI 3
    links): which operation a response's values feed, e.g. a task id to its status. Clients
    and stateful testers follow them. `links`: (path, method, status) -> {name: link}."""

    def __init__(self, *args, links: dict[tuple[str, str, str], dict] | None = None, **kwargs):
        self.links = links or {}
        super().__init__(*args, **kwargs)

    @property
    def __schema__(self) -> dict:
        schema = super().__schema__
        for (path, method, status), links in self.links.items():
            schema["paths"][path][method]["responses"][status]["x-links"] = links
        return schema
