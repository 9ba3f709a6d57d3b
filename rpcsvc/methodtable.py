"""JSON-RPC methods described once: their params as JSON Schemas, used both to bind and
validate each call's params (``Method.bind``) and to write the OpenRPC document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .registry import compile_schema, validate_schema


class Missing:
    """An absent member (``None`` is a value: a null id, a null param)."""


MISSING: Any = Missing()


@dataclass(frozen=True)
class Param:
    """One named parameter of a method, with its JSON Schema and default."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    default: Any = MISSING

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass(frozen=True)
class Method:
    """A JSON-RPC method: its handler and everything ``rpc.discover`` says about it."""

    name: str
    handler: Callable[..., Any]
    params: list[Param]
    summary: str
    result: dict[str, Any]
    errors: list[type[errors.RpcsvcError]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    validators: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    _checks: tuple[tuple[str, type | None, Callable[[Any], Any], Any], ...] = field(
        init=False, repr=False, compare=False
    )
    _names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # What bind() walks on every call: a value of a bare {"type": ...} schema's own JSON
        # type is taken without calling the compiled validator.
        checks = tuple(
            (p.name, _plain_type(p.schema), self.validators[p.name], p.default) for p in self.params
        )
        object.__setattr__(self, "_checks", checks)
        object.__setattr__(self, "_names", frozenset(p.name for p in self.params))

    def bind(self, params: Any) -> dict[str, Any]:
        """Positional or named params -> validated keyword arguments, or InvalidParams."""
        if type(params) is dict:
            given = params
            if not given.keys() <= self._names:
                unknown = next(k for k in given if k not in self._names)
                known = ", ".join(p.name for p in self.params)
                raise errors.InvalidParams(unknown, f"unknown parameter (known: {known})")
        elif params is MISSING:
            given = {}
        else:
            if len(params) > len(self.params):
                raise errors.InvalidParams(
                    "params",
                    f"{self.name} takes at most {len(self.params)} positional params, "
                    f"got {len(params)}",
                )
            given = {p.name: value for p, value in zip(self.params, params, strict=False)}
        kwargs: dict[str, Any] = {}
        for name, plain, validator, default in self._checks:
            value = given.get(name, MISSING)
            if value is MISSING:
                if default is MISSING:
                    raise errors.InvalidParams(name, "is required")
                value = default
            elif type(value) is not plain:
                validate_schema(validator, value, root=name)
            kwargs[name] = value
        return kwargs


_PLAIN_TYPES: dict[str, type] = {"string": str, "object": dict, "array": list, "boolean": bool}


def _plain_type(schema: dict[str, Any]) -> type | None:
    kind = schema.get("type")
    return _PLAIN_TYPES.get(kind) if isinstance(kind, str) and len(schema) == 1 else None


class MethodTable:
    """Methods by name; the same table dispatches calls and generates the OpenRPC document."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def __iter__(self) -> Any:
        return iter(self._methods.values())

    def get(self, name: str) -> Method | None:
        return self._methods.get(name)

    def method(
        self,
        name: str,
        *,
        summary: str,
        params: list[Param],
        result: dict[str, Any],
        errors: list[type[errors.RpcsvcError]] | None = None,
        examples: list[dict[str, Any]] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._methods:
                raise ValueError(f"method {name!r} is already registered")
            self._methods[name] = Method(
                name=name,
                handler=handler,
                params=params,
                summary=summary,
                result=result,
                errors=errors or [],
                examples=examples or [],
                validators={p.name: compile_schema(p.schema) for p in params},
            )
            return handler

        return register
