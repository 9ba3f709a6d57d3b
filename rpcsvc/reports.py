"""Report bodies and ``GET /reports/{task_id}``, which serves a finished report to a browser.

A ``generate_report`` task's worker writes the body to a file in the server's report folder
(``reports_dir``, or a temporary folder removed at shutdown) and its record keeps only small
metadata, so the record stays cheap to serve and the body is streamed from disk. Bodies of
tasks no longer held (evicted, failed, cancelled) are removed when the next report is made.
"""

from __future__ import annotations

import contextlib
import hmac
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from . import errors
from .manager import TaskManager
from .task import TaskStatus

REPORTS_RESOURCE = "reports"
REPORT_TYPE = "generate_report"
_SUFFIX = ".report"


class ReportFiles:
    """One file per report task, named by task id; the folder is the server's alone."""

    def __init__(self, directory: Path | None = None) -> None:
        self._temporary = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix="rpcsvc-reports-")) if directory is None else directory
        )
        self.directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"<ReportFiles {self.directory}>"

    def path_for(self, task_id: str) -> Path:
        return self.directory / f"{task_id}{_SUFFIX}"

    def prune(self, keep: Callable[[str], bool]) -> int:
        """Delete bodies (and half-written ones) whose task ``keep`` does not want; returns
        how many files went."""
        removed = 0
        for path in self.directory.iterdir():
            if not keep(path.name.split(".", 1)[0]):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    def close(self) -> None:
        if self._temporary:
            shutil.rmtree(self.directory, ignore_errors=True)


def report_files(manager: TaskManager) -> ReportFiles:
    """The manager's report folder, made on first use when no app set one up."""
    files = manager.resources.get(REPORTS_RESOURCE)
    if not isinstance(files, ReportFiles):
        files = manager.resources[REPORTS_RESOURCE] = ReportFiles(manager.settings.reports_dir)
    return files


def prune_reports(manager: TaskManager) -> int:
    """Remove the bodies of report tasks that are gone, failed or cancelled."""

    def keep(task_id: str) -> bool:
        try:
            task = manager.get(task_id)
        except (errors.TaskNotFound, errors.TaskEvicted):
            return False
        return task.status in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.COMPLETED)

    return report_files(manager).prune(keep)


def setup_reports(app: web.Application, manager: TaskManager) -> None:
    """Serve ``GET /reports/{task_id}`` and give ``manager`` its report folder."""
    manager.resources[REPORTS_RESOURCE] = ReportFiles(manager.settings.reports_dir)

    async def reports_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        # Reports finishing in the shutdown grace still write their bodies: remove the
        # folder only once the manager has drained, whatever order cleanups run in.
        await manager.shutdown()
        report_files(manager).close()

    app.cleanup_ctx.append(reports_ctx)
    app.router.add_get("/reports/{task_id}", _handler(manager))


def _handler(manager: TaskManager) -> Callable[[web.Request], Any]:
    async def get_report(request: web.Request) -> web.StreamResponse:
        token = manager.settings.token
        if token is not None and not _authorized(request, token):
            return _error(401, "Unauthorized", "missing or wrong bearer token")
        task_id = request.match_info["task_id"]
        try:
            task = manager.get(task_id)
        except errors.TaskNotFound:
            return _error(404, "TaskNotFound", f"no task {task_id} on this server")
        except errors.TaskEvicted:
            return _error(410, "TaskEvicted", f"task {task_id} was evicted with its report")
        if task.type != REPORT_TYPE:
            return _error(
                404, "NotAReport", f"task {task_id} is a {task.type} task, not {REPORT_TYPE}"
            )
        if task.status is not TaskStatus.COMPLETED:
            detail = f" ({task.error['message']})" if task.error else ""
            return _error(
                409,
                "TaskNotFinished" if not task.finished else "ReportFailed",
                f"task {task_id} is {task.status.value}{detail}: no report to serve",
                status=task.status.value,
            )
        path = report_files(manager).path_for(task_id)
        if not path.is_file():
            return _error(410, "ReportGone", f"the body of report {task_id} is no longer kept")
        headers = {
            "Content-Type": task.result["content_type"],
            # Reports never change, but hold what was analysed: no shared caches.
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            # The HTML is self-contained: forbid scripts and any network fetch outright.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:",
        }
        return web.FileResponse(path, headers=headers)

    return get_report


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _error(http_status: int, kind: str, message: str, **data: Any) -> web.Response:
    body = {"error": {"type": kind, "message": message, **data}}
    headers = {"WWW-Authenticate": 'Bearer realm="rpcsvc"'} if http_status == 401 else None
    return web.json_response(body, status=http_status, headers=headers)
