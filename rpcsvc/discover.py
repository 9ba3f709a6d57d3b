"""``rpc.discover``: the service's OpenRPC 1.x document, generated on each call.

Generated from the very :class:`MethodTable` that dispatches ``/rpc`` and from the task-type
registry that ``task.create`` checks against, so it cannot drift from what the server does:
every method with its params' JSON Schemas (and defaults), its result, the errors it may
answer (its own plus the protocol's, codes from :mod:`rpcsvc.errors`) and its examples; every
task type's params schema under ``components.schemas`` (``TaskParams.<type>``) and the task
types themselves under ``x-task-types``.
"""

from __future__ import annotations

from typing import Any

from . import __version__, errors
from .methods import RpcContext, methods
from .methodtable import Method, MethodTable, Param
from .registry import TaskRegistry

OPENRPC_VERSION = "1.3.2"

# Errors any call can get, whatever the method: the protocol's own.
PROTOCOL_ERRORS: tuple[type[errors.RpcsvcError], ...] = (
    errors.ParseError,
    errors.InvalidRequest,
    errors.InvalidParams,
    errors.InternalError,
)

DOCUMENT_SCHEMA: dict[str, Any] = {
    "title": "OpenRPC document",
    "description": "An OpenRPC 1.x document, see https://spec.open-rpc.org",
    "type": "object",
    "required": ["openrpc", "info", "methods"],
}


def openrpc_document(table: MethodTable, registry: TaskRegistry) -> dict[str, Any]:
    """The OpenRPC document describing ``table``'s methods and ``registry``'s task types."""
    task_types = list(registry)
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": "rpcsvc",
            "version": __version__,
            "description": "JSON-RPC 2.0 task service that collects social-media posts and "
            "analyses them. Create work with task.create (types under x-task-types), follow "
            "it with task.status / task.wait, page with task.list.",
            "license": {"name": "MIT"},
        },
        "servers": [{"name": "rpcsvc", "url": "/rpc"}],
        "methods": [method_object(method) for method in table],
        "components": {
            "schemas": {
                _params_schema_name(t.name): {
                    "title": f"params of {t.name}",
                    "description": t.description,
                    **t.params_schema,
                }
                for t in task_types
            },
            "errors": {cls.__name__: _error_object(cls) for cls in errors.application_errors()},
        },
        "x-task-types": {
            t.name: {
                "kind": t.kind,
                "description": t.description,
                "params": {"$ref": f"#/components/schemas/{_params_schema_name(t.name)}"},
                "examples": t.examples,
            }
            for t in task_types
        },
    }


def method_object(method: Method) -> dict[str, Any]:
    """One OpenRPC Method Object."""
    own_errors = [cls for cls in method.errors if cls not in PROTOCOL_ERRORS]
    result_name = str(method.result.get("title", "result")).lower()
    described: dict[str, Any] = {
        "name": method.name,
        "summary": method.summary,
        "paramStructure": "either",
        "params": [_content_descriptor(param) for param in method.params],
        "result": {"name": result_name, "schema": method.result},
        "errors": [_error_object(cls) for cls in (*PROTOCOL_ERRORS, *own_errors)],
    }
    if method.examples:
        described["examples"] = [_example_pairing(method, ex) for ex in method.examples]
    return described


def _content_descriptor(param: Param) -> dict[str, Any]:
    schema = param.schema if param.required else {**param.schema, "default": param.default}
    descriptor: dict[str, Any] = {"name": param.name, "required": param.required, "schema": schema}
    if param.description:
        descriptor["description"] = param.description
    return descriptor


def _example_pairing(method: Method, example: dict[str, Any]) -> dict[str, Any]:
    params = example.get("params", {})
    if isinstance(params, list):  # by position: name them after the method's params
        params = {p.name: value for p, value in zip(method.params, params, strict=False)}
    pairing: dict[str, Any] = {
        "name": example.get("name") or method.name,
        "params": [{"name": name, "value": value} for name, value in params.items()],
    }
    if "description" in example:
        pairing["description"] = example["description"]
    if "result" in example:
        pairing["result"] = {"name": "result", "value": example["result"]}
    return pairing


def _error_object(cls: type[errors.RpcsvcError]) -> dict[str, Any]:
    return {"code": cls.code, "message": cls.default_message}


def _params_schema_name(task_type: str) -> str:
    return f"TaskParams.{task_type}"


def register_discover(table: MethodTable) -> None:
    """Register ``rpc.discover`` on ``table``, describing that same table."""

    @table.method(
        "rpc.discover",
        summary="This service's OpenRPC document: methods, errors, examples and task types.",
        params=[],
        result=DOCUMENT_SCHEMA,
    )
    def rpc_discover(ctx: RpcContext) -> dict[str, Any]:
        return openrpc_document(table, ctx.manager.registry)


register_discover(methods)
