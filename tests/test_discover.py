"""rpc.discover: an OpenRPC document generated from what the server really dispatches."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient

from rpcsvc import errors
from rpcsvc.app import create_app
from rpcsvc.client import RpcClient
from rpcsvc.config import Settings
from rpcsvc.discover import PROTOCOL_ERRORS, register_discover
from rpcsvc.jsonrpc import RPC_KEY
from rpcsvc.methods import methods
from rpcsvc.methodtable import MethodTable, Param
from rpcsvc.tasktypes import builtin_registry, register_debug_types
from tests.conftest import Service

META_SCHEMA = Path(__file__).parents[2] / "shared" / "schemas" / "openrpc-meta-schema.json"


def _schemas(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every JSON Schema embedded in the document, with where it sits."""
    found = []
    for method in document["methods"]:
        for param in method["params"]:
            found.append((f"{method['name']}.params.{param['name']}", param["schema"]))
        found.append((f"{method['name']}.result", method["result"]["schema"]))
    found += [(f"components.{k}", v) for k, v in document["components"]["schemas"].items()]
    return found


async def test_document_is_valid_openrpc(service: Service) -> None:
    document = await service.rpc.discover()
    if not META_SCHEMA.exists():
        pytest.fail(f"the OpenRPC meta-schema is missing: {META_SCHEMA}")
    meta = json.loads(META_SCHEMA.read_text())
    jsonschema.Draft7Validator(meta).validate(document)
    # The meta-schema takes any object as a schema: check each one is a valid JSON Schema too
    for where, schema in _schemas(document):
        try:
            jsonschema.Draft7Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            pytest.fail(f"{where}: {exc.message}")


async def test_every_dispatched_method_is_described_as_it_binds(service: Service) -> None:
    document = await service.rpc.discover()
    described = {m["name"]: m for m in document["methods"]}
    # Then the document lists exactly the methods of the table that dispatches /rpc
    assert list(described) == [m.name for m in methods]
    assert {"task.create", "task.status", "task.list", "task.cancel", "task.wait",
            "rpc.discover", "service.stats"} <= set(described)  # fmt: skip
    for method in methods:
        doc = described[method.name]
        assert doc["summary"] == method.summary
        assert doc["result"]["schema"] == method.result
        assert [(p["name"], p["required"]) for p in doc["params"]] == [
            (p.name, p.required) for p in method.params
        ]
        for param, described_param in zip(method.params, doc["params"], strict=True):
            expected = (
                param.schema if param.required else {**param.schema, "default": param.default}
            )
            assert described_param["schema"] == expected
        codes = [e["code"] for e in doc["errors"]]
        assert codes == [c.code for c in PROTOCOL_ERRORS] + [
            c.code for c in method.errors if c not in PROTOCOL_ERRORS
        ]


async def test_task_create_is_described_in_full(service: Service) -> None:
    document = await service.rpc.discover()
    create = next(m for m in document["methods"] if m["name"] == "task.create")
    assert create["params"][2] == {
        "name": "priority",
        "required": False,
        "description": "Higher runs first",
        "schema": {"enum": ["low", "normal", "high", "critical"], "default": "normal"},
    }
    assert create["errors"] == [
        {"code": -32700, "message": "Parse error"},
        {"code": -32600, "message": "Invalid Request"},
        {"code": -32602, "message": "Invalid params"},
        {"code": -32603, "message": "Internal error"},
        {"code": -32002, "message": "Unknown task type"},
        {"code": -32003, "message": "Queue full"},
        {"code": -32005, "message": "Server is shutting down"},
        {"code": -32006, "message": "Limit exceeded"},
        {"code": -32007, "message": "Content not found"},
        {"code": -32001, "message": "Task not found"},
        {"code": -32004, "message": "Task evicted"},
        {"code": -32009, "message": "Task not finished"},
    ]
    assert create["examples"][0]["params"] == [
        {"name": "type", "value": "analyze_content"},
        {"name": "params", "value": {"texts": ["What a great debate!", "Terrible policy."]}},
    ]


async def test_examples_are_valid_calls(service: Service) -> None:
    document = await service.rpc.discover()
    for described in document["methods"]:
        method = methods.get(described["name"])
        assert method is not None
        for example in described.get("examples", []):
            params = {p["name"]: p["value"] for p in example["params"]}
            method.bind(params)  # raises InvalidParams naming the field if the example is stale
            if described["name"].startswith(("task.create", "service.", "rpc.")):
                result = await service.rpc.call(described["name"], **params)
                if described["name"] == "task.create":
                    done = await service.rpc.wait(result["task_id"])
                    assert done["status"] == "completed", (example["name"], done["error"])


async def test_task_types_and_their_params_schemas(service: Service) -> None:
    document = await service.rpc.discover()
    registry = service.manager.registry
    task_types = document["x-task-types"]
    assert sorted(task_types) == registry.names
    schemas = document["components"]["schemas"]
    for task_type in registry:
        described = task_types[task_type.name]
        assert described["kind"] == task_type.kind
        assert described["description"] == task_type.description
        ref = described["params"]["$ref"]
        assert ref == f"#/components/schemas/TaskParams.{task_type.name}"
        schema = schemas[ref.rsplit("/", 1)[1]]
        assert {k: v for k, v in schema.items() if k not in ("title", "description")} == {
            k: v for k, v in task_type.params_schema.items() if k not in ("title", "description")
        }
        for example in described["examples"]:
            jsonschema.validate(example, schema)
    # Errors every caller may meet are listed once, by class name, with their codes
    assert document["components"]["errors"] == {
        cls.__name__: {"code": cls.code, "message": cls.default_message}
        for cls in errors.application_errors()
    }


async def test_document_follows_the_table_that_serves(aiohttp_client: Any) -> None:
    # Given an app serving its own table: the task methods and one method of a plugin
    table = MethodTable()
    for method in methods:
        if method.name.startswith("task."):
            table.method(
                method.name, summary=method.summary, params=method.params,
                result=method.result, errors=method.errors, examples=method.examples,
            )(method.handler)  # fmt: skip

    @table.method(
        "plugin.echo",
        summary="Echo a word.",
        params=[Param("word", {"type": "string", "minLength": 1})],
        result={"type": "string"},
        errors=[errors.TaskNotFound],
    )
    def echo(ctx: Any, word: str) -> str:
        return word

    register_discover(table)
    registry = builtin_registry()
    register_debug_types(registry)
    app = create_app(Settings(workers=1), registry=registry)
    app[RPC_KEY] = dataclasses.replace(app[RPC_KEY], table=table)
    http: TestClient[Any, Any] = await aiohttp_client(app)
    rpc = RpcClient("/rpc", session=http)
    # When it is asked to describe itself
    document = await rpc.discover()
    # Then it describes exactly that table, including the new method as it dispatches
    assert [m["name"] for m in document["methods"]] == [
        "task.create", "task.status", "task.list", "task.cancel", "task.wait",
        "plugin.echo", "rpc.discover",
    ]  # fmt: skip
    plugin = next(m for m in document["methods"] if m["name"] == "plugin.echo")
    assert plugin["params"] == [
        {"name": "word", "required": True, "schema": {"type": "string", "minLength": 1}}
    ]
    assert plugin["errors"][-1] == {"code": -32001, "message": "Task not found"}
    assert await rpc.call("plugin.echo", word="hi") == "hi"
    with pytest.raises(errors.MethodNotFound):
        await rpc.call("service.stats")
