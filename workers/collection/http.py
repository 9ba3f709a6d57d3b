"""The one HTTP client connectors share: polite towards platforms, quick to cancel.

- One ``aiohttp.ClientSession`` per server (passed in; the server owns and closes it).
- At most ``per_host_limit`` requests in flight per host.
- A timeout per request (``request_timeout``), not per collection.
- Retries with exponential backoff and jitter on timeouts, connection errors and 5xx; no retry
  on 4xx except 429.
- Rate limits: ``429``/``503`` with ``Retry-After`` wait that long; a response saying the
  quota is spent (``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset``, as Mastodon and
  Reddit send, or the IETF ``RateLimit-Remaining``/``RateLimit-Reset`` and ``RateLimit: r=;t=``
  fields) pauses every later request to that host until the reset. A wait longer than
  ``max_rate_limit_wait`` fails the request instead of parking a task for an hour.
- ``asyncio.CancelledError`` is never caught: cancelling a collection stops it at once, also
  in the middle of a backoff sleep.

``sleep``, ``clock`` and ``wall_clock`` are injectable so tests can check waits without waiting.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from yarl import URL

from rpcsvc.errors import EntityNotFound, PlatformError

log = logging.getLogger(__name__)

# Reset values above this are epoch seconds; below it, seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    per_host_limit: int = 4
    request_timeout: float = 30.0
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_rate_limit_wait: float = 300.0
    user_agent: str = "rpcsvc/0.1 (social media research collector; python-aiohttp)"


@dataclass(frozen=True, slots=True)
class JsonResponse:
    status: int
    url: str
    headers: Mapping[str, str]
    links: Mapping[str, str]  # Link header: rel -> absolute URL
    data: Any


class HttpStatusError(PlatformError):
    """A 4xx answer that retrying cannot fix; ``status`` and the decoded ``body`` are kept."""

    def __init__(self, message: str, *, status: int, url: str, body: Any) -> None:
        super().__init__(message, data={"status": status, "url": url})
        self.status = status
        self.body = body


class HttpClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: HttpSettings | None = None,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.session = session
        self.settings = settings or HttpSettings()
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._jitter = jitter
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._resume_at: dict[str, float] = {}
        self.stats: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<HttpClient hosts={sorted(self._slots)} stats={dict(self.stats)}>"

    async def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        not_found: str | None = None,
    ) -> JsonResponse:
        """GET ``url`` and decode its JSON body, retrying as the module docstring says.

        ``not_found`` names the entity behind the URL: a 404/410 then raises
        :class:`EntityNotFound` naming it. Other 4xx raise :class:`HttpStatusError`; giving up
        on retries raises :class:`PlatformError`.
        """
        host = _host_key(url)
        slots = self._slots.setdefault(host, asyncio.Semaphore(self.settings.per_host_limit))
        request_headers = {"User-Agent": self.settings.user_agent, "Accept": "application/json"}
        request_headers.update(headers or {})
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout)
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                async with slots:
                    # Inside the slot, so requests queued behind a 429 also see the pause.
                    await self._wait_for_host(host, url)
                    async with self.session.get(
                        url, params=params, headers=request_headers, timeout=timeout
                    ) as response:
                        self.stats["requests"] += 1
                        self._note_quota(host, response.headers)
                        status = response.status
                        body = await response.read()
                        final_url = str(response.url)
                        links = {
                            str(rel): str(link.get("url", ""))
                            for rel, link in response.links.items()
                        }
                        response_headers = response.headers.copy()
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                problem = _describe(exc, self.settings.request_timeout)
                delay = self._backoff(attempt)
            except aiohttp.ClientError as exc:
                raise PlatformError(f"GET {url}: {exc}", data={"url": url}) from exc
            else:
                if 200 <= status < 300:
                    return JsonResponse(
                        status, final_url, response_headers, links, _decode(body, url)
                    )
                retry_after = self._retry_after(response_headers)
                if status == 429:
                    self.stats["rate_limited"] += 1
                    delay = retry_after if retry_after is not None else self._backoff(attempt)
                    self._pause_host(host, delay)
                    problem = "HTTP 429 Too Many Requests"
                elif status >= 500:
                    delay = retry_after if retry_after is not None else self._backoff(attempt)
                    problem = f"HTTP {status}"
                elif status in (404, 410) and not_found:
                    raise EntityNotFound(
                        f"{not_found} not found (HTTP {status})",
                        data={"status": status, "url": url},
                    )
                else:
                    raise HttpStatusError(
                        f"GET {url}: HTTP {status}", status=status, url=url, body=_try_decode(body)
                    )
            if attempt == attempts:
                raise PlatformError(
                    f"GET {url}: {problem}, gave up after {attempts} attempts",
                    data={"url": url, "attempts": attempts, "problem": problem},
                )
            if delay > self.settings.max_rate_limit_wait:
                raise PlatformError(
                    f"GET {url}: {problem}; the platform asks to wait {delay:.0f} s, more than "
                    f"max_rate_limit_wait={self.settings.max_rate_limit_wait:g}",
                    data={"url": url, "retry_after": delay},
                )
            self.stats["retries"] += 1
            log.info("GET %s: %s; retry %d/%d in %.2f s", url, problem, attempt, attempts, delay)
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- rate limits -------------------------------------------------------------------------

    async def _wait_for_host(self, host: str, url: str) -> None:
        wait = self._resume_at.get(host, 0.0) - self._clock()
        if wait <= 0:
            return
        if wait > self.settings.max_rate_limit_wait:
            raise PlatformError(
                f"GET {url}: rate limit spent for {wait:.0f} s, more than "
                f"max_rate_limit_wait={self.settings.max_rate_limit_wait:g}",
                data={"url": url, "retry_after": wait},
            )
        self.stats["rate_limit_waits"] += 1
        log.info("%s: rate limit spent; waiting %.2f s", host, wait)
        await self._sleep(wait)

    def _pause_host(self, host: str, delay: float) -> None:
        resume = self._clock() + delay
        if resume > self._resume_at.get(host, 0.0):
            self._resume_at[host] = resume

    def _note_quota(self, host: str, headers: Mapping[str, str]) -> None:
        quota = rate_limit_quota(headers, self._wall_clock())
        if quota is not None and quota[0] <= 0:
            self._pause_host(host, quota[1])

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        return parse_retry_after(headers.get("Retry-After"), self._wall_clock())

    def _backoff(self, attempt: int) -> float:
        # Exponential with "equal jitter": at least half the step, so waits still grow.
        step = min(self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempt - 1))
        return step / 2 + step / 2 * self._jitter()


# --- header parsing (pure functions, tested directly) -----------------------------------------


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``Retry-After``: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def parse_reset(value: str | None, now: float) -> float | None:
    """Seconds until a quota resets, from the forms platforms use.

    Mastodon sends an ISO 8601 time, Reddit and the IETF draft seconds from now, others epoch
    seconds; numbers above 10^9 are taken as epoch seconds.
    """
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, moment.timestamp() - now)
    return max(0.0, number - now if number > _EPOCH_THRESHOLD else number)


_STRUCTURED_PARAM = re.compile(r";\s*([rt])\s*=\s*(\d+(?:\.\d+)?)")


def rate_limit_quota(headers: Mapping[str, str], now: float) -> tuple[float, float] | None:
    """(remaining requests, seconds to reset) from the response headers, if they say both."""
    for prefix in ("X-RateLimit-", "RateLimit-"):
        remaining = headers.get(prefix + "Remaining")
        reset = parse_reset(headers.get(prefix + "Reset"), now)
        if remaining is not None and reset is not None:
            try:
                return float(remaining), reset
            except ValueError:
                continue
    # draft-ietf-httpapi-ratelimit-headers-07+: RateLimit: "policy";r=0;t=30, one item a policy;
    # the item closest to exhaustion is the one that binds.
    structured = headers.get("RateLimit")
    if structured:
        best: tuple[float, float] | None = None
        for item in structured.split(","):
            params = dict(_STRUCTURED_PARAM.findall(item))
            if "r" in params and "t" in params:
                quota = (float(params["r"]), float(params["t"]))
                if best is None or quota[0] < best[0]:
                    best = quota
        return best
    return None


def _host_key(url: str) -> str:
    parsed = URL(url)
    return f"{parsed.host}:{parsed.port}"


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within request_timeout={timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


def _decode(body: bytes, url: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PlatformError(
            f"GET {url}: the answer is not JSON ({exc})", data={"url": url}
        ) from None


def _try_decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace")
