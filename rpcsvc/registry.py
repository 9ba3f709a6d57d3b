"""Task types, registered by name: the only way work enters the service.

A task type says what kind of work it is (``cpu`` runs in the process pool, ``io`` as an asyncio
task on the server's loop), the JSON Schema of its params (used both to validate and to
describe it in ``rpc.discover``), and how to run it. Nothing from the network is ever
unpickled or imported by path: a caller can only name a type registered here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import fastjsonschema

from .errors import InvalidParams, UnknownTaskType

if TYPE_CHECKING:
    from .manager import TaskContext

Kind = Literal["cpu", "io"]


@dataclass(frozen=True, slots=True)
class Call:
    """One picklable call to a top-level function in ``workers``; ``cost`` ~ posts it handles."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    cost: int = 1


@dataclass(frozen=True, slots=True)
class Plan:
    """How a ``cpu`` task runs: ``chunks`` in the pool, then ``finish(*args, partials)``.

    Chunks of one task may run on different workers at once; ``finish`` merges their results
    (in the pool when it is heavy, such as topic modelling over the whole set; in the server
    when it is a cheap concatenation). A one-chunk task runs chunk and finish in one pool call.
    """

    chunks: list[Call]
    finish: Call | None = None
    finish_in_pool: bool = True


PlanFn = Callable[[dict[str, Any], "TaskContext"], Plan]
RunFn = Callable[[dict[str, Any], "TaskContext"], Awaitable[Any]]
CheckFn = Callable[[dict[str, Any], "TaskContext"], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class TaskType:
    """A named kind of work callers may ask for with ``task.create``."""

    name: str
    kind: Kind
    description: str
    params_schema: dict[str, Any]
    plan: PlanFn | None = None
    run: RunFn | None = None
    check: CheckFn | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    _validator: Callable[[Any], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.kind == "cpu") != (self.plan is not None) or (self.kind == "io") != (
            self.run is not None
        ):
            raise TypeError(f"task type {self.name!r}: cpu types need plan=, io types need run=")
        object.__setattr__(self, "_validator", compile_schema(self.params_schema))

    def validate(self, params: Any, context: TaskContext) -> dict[str, Any]:
        """Checked and normalised params, or :class:`InvalidParams` naming the field."""
        validate_schema(self._validator, params, root="params")
        return self.check(params, context) if self.check else params


def compile_schema(schema: dict[str, Any]) -> Callable[[Any], Any]:
    # fastjsonschema compiles to Python code once: validating 200,000 posts costs ~0.1 s.
    return fastjsonschema.compile(schema, use_default=True)


def validate_schema(validator: Callable[[Any], Any], value: Any, *, root: str) -> None:
    try:
        validator(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        field_name = (exc.name or "data").replace("data", root, 1)
        problem = exc.message.replace(exc.name or "data", "", 1).strip() or "is invalid"
        raise InvalidParams(field_name, problem) from None


class TaskRegistry:
    """Task types by name."""

    def __init__(self) -> None:
        self._types: dict[str, TaskType] = {}

    def __repr__(self) -> str:
        return f"<TaskRegistry {sorted(self._types)}>"

    def __iter__(self) -> Iterator[TaskType]:
        return iter(self._types.values())

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def register(self, task_type: TaskType) -> TaskType:
        if task_type.name in self._types:
            raise ValueError(f"task type {task_type.name!r} is already registered")
        self._types[task_type.name] = task_type
        return task_type

    def get(self, name: str) -> TaskType:
        try:
            return self._types[name]
        except KeyError:
            known = sorted(self._types)
            raise UnknownTaskType(
                f"Unknown task type {name!r}; known types: {', '.join(known)}",
                data={"type": name, "known": known},
            ) from None

    @property
    def names(self) -> list[str]:
        return sorted(self._types)

    def as_mapping(self) -> Mapping[str, TaskType]:
        return dict(self._types)
