"""The one exception tree of rpcsvc, and the one place where it meets JSON-RPC error codes.

Every error a caller can see is a subclass of :class:`RpcsvcError` carrying a stable ``code``
and an optional ``data`` member. Codes -32700..-32600 are the JSON-RPC 2.0 protocol errors;
application errors use the "server error" range -32000..-32099 that the specification leaves
to implementations. The README's error table is generated from this module's classes.
"""

from __future__ import annotations

from typing import Any


class RpcsvcError(Exception):
    """Root of every error rpcsvc raises on purpose."""

    code: int = -32603
    default_message: str = "Internal error"

    def __init__(self, message: str | None = None, *, data: Any = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# --- JSON-RPC protocol errors (codes fixed by the specification) -----------------------------


class ParseError(RpcsvcError):
    """The body is not valid JSON."""

    code = -32700
    default_message = "Parse error"


class InvalidRequest(RpcsvcError):
    """The JSON is not a valid JSON-RPC 2.0 request object (or the batch is empty)."""

    code = -32600
    default_message = "Invalid Request"


class MethodNotFound(RpcsvcError):
    """No method of that name is registered."""

    code = -32601
    default_message = "Method not found"


class InvalidParams(RpcsvcError):
    """A parameter is missing, unknown, or of the wrong type or value; ``data.field`` names it."""

    code = -32602
    default_message = "Invalid params"

    def __init__(self, field: str, problem: str, **details: Any) -> None:
        super().__init__(
            f"Invalid params: {field}: {problem}",
            data={"field": field, "problem": problem, **details},
        )
        self.field = field
        self.problem = problem


class InternalError(RpcsvcError):
    """A bug in rpcsvc: the request was valid but the server failed to answer it."""

    code = -32603
    default_message = "Internal error"


# --- Application errors ----------------------------------------------------------------------


class TaskNotFound(RpcsvcError):
    """No task with that id was ever created on this server."""

    code = -32001
    default_message = "Task not found"


class UnknownTaskType(RpcsvcError):
    """``task.create`` named a task type that is not registered; ``data.known`` lists them."""

    code = -32002
    default_message = "Unknown task type"


class QueueFull(RpcsvcError):
    """The pending queue is at its configured maximum; retry later."""

    code = -32003
    default_message = "Queue full"


class TaskEvicted(RpcsvcError):
    """The task existed but its record was evicted (result TTL or finished-task cap)."""

    code = -32004
    default_message = "Task evicted"


class ShuttingDown(RpcsvcError):
    """The server is shutting down and accepts no new tasks."""

    code = -32005
    default_message = "Server is shutting down"


class LimitExceeded(RpcsvcError):
    """A request limit was exceeded (batch length, posts per task, body size)."""

    code = -32006
    default_message = "Limit exceeded"


class ContentNotFound(RpcsvcError):
    """One or more ``content_ids`` are not in the content store; ``data.missing`` lists them."""

    code = -32007
    default_message = "Content not found"


class ContentStoreFull(RpcsvcError):
    """The content store holds its configured maximum number of posts."""

    code = -32008
    default_message = "Content store full"


class TaskNotFinished(RpcsvcError):
    """The operation needs a finished task (e.g. its report) but the task is still going."""

    code = -32009
    default_message = "Task not finished"


# --- Errors inside tasks (reported in the task record's ``error``, not as RPC errors) --------


class TaskError(RpcsvcError):
    """Base of errors that end a task ``failed``; ``error.type`` is the class name."""


class TaskTimeout(TaskError):
    """The task ran past its ``timeout``."""

    default_message = "Task timed out"


class WorkerDied(TaskError):
    """The worker process running the task died (killed, crashed, or out of memory).

    ``culprit`` is true when the task's own process died; bystanders merely lost their pool
    and are retried without counting an attempt.
    """

    default_message = "Worker process died"

    def __init__(self, message: str | None = None, *, culprit: bool = False) -> None:
        super().__init__(message)
        self.culprit = culprit


class Interrupted(TaskError):
    """The server stopped or restarted while the task was pending or running."""

    default_message = "Interrupted by restart"


class CollectionError(TaskError):
    """Collecting from a platform failed for one entity or for the whole task."""

    default_message = "Collection failed"


class EntityNotFound(CollectionError):
    """The platform does not know the account, tag, subreddit or file asked for."""

    default_message = "Entity not found"


class PlatformError(CollectionError):
    """The platform kept failing (5xx, timeouts, connection errors) after retries."""

    default_message = "Platform error"


class PathNotAllowed(CollectionError):
    """A ``file`` collection named a path outside the configured import folder."""

    default_message = "Path not allowed"


class ConfigError(RpcsvcError):
    """A setting from the environment or the command line has a bad value."""

    default_message = "Bad configuration"


def application_errors() -> list[type[RpcsvcError]]:
    """Every error class a JSON-RPC caller can receive, for docs and OpenRPC."""
    return [
        cls
        for cls in (
            ParseError,
            InvalidRequest,
            MethodNotFound,
            InvalidParams,
            InternalError,
            TaskNotFound,
            UnknownTaskType,
            QueueFull,
            TaskEvicted,
            ShuttingDown,
            LimitExceeded,
            ContentNotFound,
            ContentStoreFull,
            TaskNotFinished,
        )
    ]


def from_error(error: dict[str, Any]) -> RpcsvcError:
    """The exception for a JSON-RPC ``error`` member received by a client."""
    code = error.get("code")
    message = str(error.get("message", "Unknown error"))
    data = error.get("data")
    for cls in application_errors():
        if cls.code == code:
            exc = cls.__new__(cls)
            RpcsvcError.__init__(exc, message, data=data)
            if isinstance(exc, InvalidParams) and isinstance(data, dict):
                exc.field, exc.problem = data.get("field", ""), data.get("problem", "")
            return exc
    exc = RpcsvcError(message, data=data)
    exc.code = code if isinstance(code, int) else InternalError.code
    return exc
