"""Helpers for tests that watch real processes: wait for an exit, list a process tree."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path


async def process_exit(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (a zombie counts), False if it still runs after ``timeout``.

    Waits on a pidfd, which becomes readable when the process terminates: no polling.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, lambda: exited.done() or exited.set_result(None))
    try:
        await asyncio.wait_for(exited, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


REPO = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


class ServerProcess:
    """A real ``rpcsvc serve`` in a subprocess, with its stderr log collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.lines: list[str] = []
        self.url = ""
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._new_line.set()
        self._new_line.set()

    async def wait_for_line(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first log line matching ``pattern``, waiting for it to be written."""
        regex = re.compile(pattern)

        async def find() -> re.Match[str]:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if match := regex.search(line):
                        return match
                seen = len(self.lines)
                if self._reader.done():
                    raise AssertionError(f"server exited without logging {pattern!r}:\n{self.log}")
                self._new_line.clear()
                await self._new_line.wait()

        return await asyncio.wait_for(find(), timeout)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait(self, timeout: float) -> int:
        """The exit code, once the process has exited."""
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        # the rest of the log; an orphaned child could hold the pipe open: do not wait forever
        await asyncio.wait([self._reader], timeout=5)
        return code

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


async def start_server(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``rpcsvc serve`` on a free port (``--port 0``) and wait for its "listening" line."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RPCSVC_")}
    environ.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rpcsvc.cli",
        "serve",
        "--port",
        "0",
        "--workers",
        "2",
        *args,
        cwd=REPO,
        env=environ,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    server = ServerProcess(proc)
    try:
        server.url = (await server.wait_for_line(LISTENING.pattern)).group(1)
    except BaseException:
        await server.stop()
        raise
    return server
