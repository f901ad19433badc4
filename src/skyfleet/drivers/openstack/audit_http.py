"""The health audit's cheap calls: one authenticated GET per site, on one asyncio event loop thread.

Why it exists: an audit cycle of an unchanged site is one GET with the token the site already gave
(``reconcile.audit_cycle``). Through requests and a thread per call, each call costs about 1 ms of
CPU; on one event loop with aiohttp, about 0.2 ms (measured against the simulator, 2,000 GETs 256
at a time: aiohttp 0.16-0.25 ms per request, httpx's AsyncClient 8-9 ms, its pool being the cost).
The full probe's calls, its login included, run here too (``probe_loop``): a call with a ``body`` is a
POST of that JSON document, and an answer carries Keystone's ``X-Subject-Token`` header when there is one.

Bounds: ``concurrency`` calls at once in the process (one semaphore), at most ``per_site`` at once to
one site, and one aiohttp client (its own connection pool, at most ``concurrency`` connections) per
origin and TLS setting, the ``max_clients`` most recently used kept open (LRU; the others closed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp
from yarl import URL

_USER_AGENT = "skyfleet-audit"
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None)
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One GET (a POST of ``body`` when there is one): ``site`` names the per-site bound; ``verify`` as
    keystoneauth takes it (bool or CA path); an empty ``token`` sends none."""

    site: str
    url: str
    token: str
    verify: bool | str = True
    timeout: float = 10.0
    body: Any = field(default=None, repr=False)  # a login's body holds the password: never in a repr


@dataclass(frozen=True)
class Answer:
    """What the site said: a status and its JSON body (below 400), or no status and a short, secret-free error."""

    status: int | None
    body: Any
    seconds: float
    error: str | None = None
    subject_token: str | None = field(default=None, repr=False)  # X-Subject-Token: a login's new token


@dataclass(frozen=True)
class Request:
    """Any request (the sync kinds' REST calls, ``site_http``): ``url`` already quoted, query included;
    ``site`` names the per-site bound; ``proxy`` as aiohttp takes it (None: direct)."""

    site: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    verify: bool | str = True
    timeout: float = 10.0
    proxy: str | None = None


@dataclass(frozen=True)
class Reply:
    """The raw answer to a :class:`Request`: a status and the body's bytes, or no status and a short,
    secret-free error (``timed_out`` tells a timeout from a failure to connect)."""

    status: int | None
    body: bytes
    seconds: float
    error: str | None = None
    timed_out: bool = False


class _Gate(Protocol):
    """A process-wide admission the calls take a slot of (the priority lanes' background slots)."""

    def try_take_background(self) -> bool: ...

    def take_background(self) -> None: ...

    def free_background(self) -> None: ...


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    try:
        import certifi  # what requests (so keystoneauth) verifies against

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover
        return ssl.create_default_context()


def _describe(exc: BaseException) -> str:
    """Like ``probe.describe_error``: a class name, never the remote's text."""
    name = type(exc).__name__
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "request timed out"
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return f"cannot connect: {name}"
    return name


class AuditHttp:
    """Cheap GETs for the health audit; thread-safe ``submit``, answers as concurrent futures."""

    def __init__(self, *, concurrency: int = 256, per_site: int = 2, max_clients: int = 1024) -> None:
        self.concurrency = max(1, concurrency)
        self.per_site = max(1, per_site)
        self.max_clients = max(1, max_clients)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._gate: asyncio.Semaphore | None = None
        self._sites: dict[str, tuple[asyncio.Semaphore, int]] = {}  # site -> (its gate, calls using it)
        self._clients: OrderedDict[tuple[str, str], aiohttp.ClientSession] = OrderedDict()
        self._contexts: dict[str, ssl.SSLContext | bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # started by start_many: held until they end

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = _new_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="audit-http", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def submit(self, call: Call) -> concurrent.futures.Future[Answer]:
        """Start ``call`` on the event loop; the future never raises for a site-side failure."""
        return asyncio.run_coroutine_threadsafe(self._get(call), self._ensure_loop())

    def send(self, request: Request) -> concurrent.futures.Future[Reply]:
        """Start ``request`` on the event loop, under the same bounds as the GETs; the future never raises
        for a site-side failure (the reply says it)."""
        return asyncio.run_coroutine_threadsafe(self._send(request), self._ensure_loop())

    def start_many(self, calls: Sequence[Call], answered: Callable[[int, Answer], None],
                   gate: _Gate | None = None) -> None:
        """Start every call in one hand-over to the loop (not one per call); ``answered(index, answer)`` runs
        on the loop thread as each one ends and must not block. With ``gate``, each call holds one of its
        slots while it runs; a call that finds none free waits for one on a helper thread, never on the loop."""
        loop = self._ensure_loop()

        async def one(index: int, call: Call) -> None:
            if gate is not None and not gate.try_take_background():
                await loop.run_in_executor(None, gate.take_background)
            try:
                answer = await self._get(call)
            finally:
                if gate is not None:
                    gate.free_background()
            answered(index, answer)

        async def start() -> None:
            for index, call in enumerate(calls):
                task = loop.create_task(one(index, call))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        asyncio.run_coroutine_threadsafe(start(), loop)

    def run(self, make: Callable[[], Awaitable[T]], gate: _Gate | None = None) -> concurrent.futures.Future[T]:
        """Run ``make()`` on the event loop (from any thread, the loop's own included); with ``gate``, holding
        one of its slots while it runs (waiting for one on a helper thread, never on the loop)."""
        loop = self._ensure_loop()

        async def held() -> T:
            if gate is not None and not gate.try_take_background():
                await loop.run_in_executor(None, gate.take_background)
            try:
                return await make()
            finally:
                if gate is not None:
                    gate.free_background()

        return asyncio.run_coroutine_threadsafe(held(), loop)

    async def fetch(self, call: Call) -> Answer:
        """``call`` awaited on the event loop (within the same bounds as the others); never raises for a
        site-side failure."""
        return await self._get(call)

    def close(self) -> None:
        """Close every client and stop the loop thread (a later ``submit`` starts a new one)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return

        async def closing() -> None:
            clients, self._clients = list(self._clients.values()), OrderedDict()
            for client in clients:
                await client.close()

        asyncio.run_coroutine_threadsafe(closing(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
        self._gate, self._sites = None, {}

    # --- on the loop ------------------------------------------------------------------------------

    def _client(self, url: str, verify: bool | str) -> aiohttp.ClientSession:
        slash = url.find("/", url.find("//") + 2)
        tls = str(verify)
        key = (url if slash < 0 else url[:slash], tls)  # the origin: scheme://host:port
        client = self._clients.get(key)
        if client is not None and not client.closed:
            self._clients.move_to_end(key)
            return client
        if tls not in self._contexts:  # one TLS context per setting, not per site: building one is costly
            self._contexts[tls] = _ssl_context(verify)
        client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency, ssl=self._contexts[tls]),
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"})
        self._clients[key] = client
        while len(self._clients) > self.max_clients:
            _, old = self._clients.popitem(last=False)
            asyncio.get_running_loop().create_task(old.close())
        return client

    async def _get(self, call: Call) -> Answer:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.concurrency)
        site_gate, users = self._sites.get(call.site) or (asyncio.Semaphore(self.per_site), 0)
        self._sites[call.site] = (site_gate, users + 1)
        try:
            async with self._gate, site_gate:
                return await self._fetch(call)
        finally:
            gate, users = self._sites[call.site]
            if users <= 1:
                del self._sites[call.site]
            else:
                self._sites[call.site] = (gate, users - 1)

    async def _fetch(self, call: Call) -> Answer:
        started = time.monotonic()
        try:
            client = self._client(call.url, call.verify)
            # asyncio's own timeout: aiohttp's per-request timer costs more CPU than the GET itself
            headers = {"X-Auth-Token": call.token} if call.token else None
            async with asyncio.timeout(call.timeout), client.request(
                    "GET" if call.body is None else "POST", call.url, headers=headers, json=call.body,
                    timeout=_NO_TIMEOUT) as response:
                raw = await response.read()
                subject = response.headers.get("X-Subject-Token")
                body: Any = None
                if response.status < 400 and raw:  # 300: Glance's version list
                    try:
                        body = await response.json(content_type=None)
                    except ValueError:
                        return Answer(response.status, None, time.monotonic() - started, "not a JSON document",
                                      subject)
                return Answer(response.status, body, time.monotonic() - started, None, subject)
        except Exception as exc:  # any failure is the site's answer, not a crash of the audit
            return Answer(None, None, time.monotonic() - started, _describe(exc))

    async def _send(self, request: Request) -> Reply:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.concurrency)
        site_gate, users = self._sites.get(request.site) or (asyncio.Semaphore(self.per_site), 0)
        self._sites[request.site] = (site_gate, users + 1)
        try:
            async with self._gate, site_gate:
                return await self._exchange(request)
        finally:
            gate, users = self._sites[request.site]
            if users <= 1:
                del self._sites[request.site]
            else:
                self._sites[request.site] = (gate, users - 1)

    async def _exchange(self, request: Request) -> Reply:
        started = time.monotonic()
        try:
            client = self._client(request.url, request.verify)
            # encoded=True: the URL is quoted as requests quotes it, and yarl must not normalise it again
            async with asyncio.timeout(request.timeout), client.request(
                    request.method, URL(request.url, encoded=True), headers=request.headers, data=request.body,
                    proxy=request.proxy, timeout=_NO_TIMEOUT, allow_redirects=True) as response:
                raw = await response.read()
                return Reply(response.status, raw, time.monotonic() - started)
        except Exception as exc:  # any failure is the site's answer: the caller maps it to a SiteError
            return Reply(None, b"", time.monotonic() - started, _describe(exc),
                         timed_out=isinstance(exc, asyncio.TimeoutError | TimeoutError))
