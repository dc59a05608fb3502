"""What one request's body may cost before the app sees it: size, pace and structure.

``BodyGuardMiddleware`` replaces a plain size check with four bounds:

- size: a body over ``WW_API_MAX_BODY_BYTES`` gets 413, announced or streamed;
- pace: a body whose next piece does not arrive within ``WW_API_REQUEST_TIMEOUT`` gets 408
  and the connection is closed (a slow but steady sender is never cut);
- structure: FastAPI decodes a JSON body with ``json.loads`` on the event loop, where 9 MB of
  tiny objects costs ~0.3 s during which no other request moves. A JSON body over
  ``BIG_BODY_BYTES`` is first scanned (numpy), a slice at a time with the loop free between, and
  refused with 413 when it holds more than ``MAX_JSON_ITEMS`` members, elements and
  containers, which bounds the decode that follows to tens of milliseconds;
- concurrency: at most ``READ_PERMITS`` such bodies per process are buffered at once, and
  at most ``PARSE_PERMITS`` of those scanned and decoded at once. The others wait, unread,
  in the kernel's socket buffers (not in this process's memory) for up to the request
  timeout, then get 503. A slow sender of a big body holds a read permit while it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import sys
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.lowlevel
import anyio.to_thread
import numpy as np
import numpy.typing as npt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ww.api.errors import error_response

__all__ = [
    "BIG_BODY_BYTES",
    "MAX_JSON_ITEMS",
    "PARSE_PERMITS",
    "READ_PERMITS",
    "BodyGuardMiddleware",
    "count_json_items",
]

# Smaller JSON bodies are decoded as they come: 64 KB of the tiniest objects decodes in ~2 ms.
BIG_BODY_BYTES = 64 * 1024
# A full batch (1,000 episodes, each with 64 metadata and 64 context.extra keys) holds ~150,000.
MAX_JSON_ITEMS = 200_000
# 4 x the 10 MB default body limit bounds what big bodies in flight hold in memory.
READ_PERMITS = 4
# Each decode of a body under MAX_JSON_ITEMS holds the event loop up to ~60 ms.
PARSE_PERMITS = 2
# Bytes scanned between two yields to the event loop (~2 ms of work here).
_SLICE = 128 * 1024
# Bytes counted raw (strings included) between two yields: about as long.
_ROUGH_SLICE = 1024 * 1024
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_STRUCTURAL = np.frombuffer(b",[{", dtype=np.uint8)


def _load_glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 -- musl has no malloc_trim
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_glibc()


async def count_json_items(body: bytes, limit: int, slice_bytes: int = _SLICE) -> int:
    """Commas, ``{`` and ``[`` outside strings, counted up to past ``limit``.

    Decoding costs about one allocation per member or element, and each one past the first
    of its container is announced by a comma, so this count bounds the decode's work. When
    the raw bytes (strings included) hold no more than ``limit`` of them the body is not
    scanned at all; otherwise it is scanned with numpy a slice at a time, yielding to the
    event loop in between, and the scan stops at the first slice that passes ``limit``.
    """
    rough = 0
    for start in range(0, len(body), _ROUGH_SLICE):
        end = start + _ROUGH_SLICE
        rough += sum(body.count(mark, start, end) for mark in (b",", b"{", b"["))
        await anyio.lowlevel.checkpoint()
    if rough <= limit:
        return rough
    data = np.frombuffer(body, dtype=np.uint8)
    count = 0
    inside = 0  # 1 when the slice starts inside a string
    run = 0  # backslashes ending the previous slice
    for start in range(0, len(data), slice_bytes):
        part = data[start : start + slice_bytes]
        count, inside, run = _scan(part, count, inside, run)
        if count > limit:
            break
        await anyio.lowlevel.checkpoint()
    return count


def _scan(part: npt.NDArray[np.uint8], count: int, inside: int, run: int) -> tuple[int, int, int]:
    """One slice: the count so far plus its structural bytes outside strings, whether the
    next slice starts inside a string, and the backslashes that end this one."""
    idx = np.arange(len(part), dtype=np.int64)
    # Backslashes in a row ending at each byte (0 where the byte is not one).
    last_other = np.maximum.accumulate(np.where(part == _BACKSLASH, -1, idx))
    runs = np.where(last_other >= 0, idx - last_other, idx + 1 + run)
    # A quote after an odd number of backslashes is escaped; the others open or close.
    quotes = np.flatnonzero(part == _QUOTE)
    before = np.where(quotes > 0, runs[np.maximum(quotes - 1, 0)], run)
    real = quotes[before % 2 == 0]
    marks = np.flatnonzero(np.isin(part, _STRUCTURAL))
    outside = (np.searchsorted(real, marks) + inside) % 2 == 0
    return (
        count + int(np.count_nonzero(outside)),
        (inside + len(real)) % 2,
        int(runs[-1]) if len(runs) else run,
    )


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.close = status, code, message, close


class _Gone(Exception):
    """The client disconnected before its body was complete: nothing to answer."""


class _Reader:
    """``receive`` for the body: each piece must arrive within ``timeout`` seconds, and the
    pieces must add up to at most ``max_bytes``. Once the body is complete, calls pass
    straight through (an app waiting for the client to disconnect is not timed)."""

    def __init__(self, receive: Receive, timeout: float, max_bytes: int) -> None:
        self._receive = receive
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._size = 0
        self._done = False

    async def receive(self) -> Message:
        if self._done:
            return await self._receive()
        try:
            with anyio.fail_after(self._timeout):
                message = await self._receive()
        except TimeoutError:
            raise _Refused(
                408,
                "request_timeout",
                f"no part of the request body arrived for {self._timeout:g} s",
                close=True,
            ) from None
        if message["type"] != "http.request":
            self._done = True
            return message
        self._size += len(message.get("body", b""))
        if self._size > self._max_bytes:
            raise _Refused(413, "payload_too_large", f"request body over {self._max_bytes} bytes")
        self._done = not message.get("more_body", False)
        return message

    async def read_all(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                raise _Gone
            chunks.append(message.get("body", b""))
            if self._done:
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive, delivered: Callable[[], object]) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        delivered()
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI will decode the body as JSON (it does when no type is given)."""
    if not content_type:
        return True
    kind = content_type.split(b";")[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )


class BodyGuardMiddleware:
    """Bound each request body's size, pace and structure (see the module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout: float,
        *,
        read_permits: int = READ_PERMITS,
        parse_permits: int = PARSE_PERMITS,
        big_bytes: int = BIG_BODY_BYTES,
        max_items: int = MAX_JSON_ITEMS,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.permits = (read_permits, parse_permits)
        self.big_bytes = big_bytes
        self.max_items = max_items
        # An asyncio semaphore belongs to one loop; a test client may run several in turn.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gates = (asyncio.Semaphore(read_permits), asyncio.Semaphore(parse_permits))
        self._in_flight = 0  # big JSON bodies waiting, buffered or being handled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_marked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._guarded(scope, receive, send_marked)
        except _Gone:
            return
        except _Refused as exc:
            if started:  # a streaming app that read late: too late to answer
                return
            rid = scope.get("state", {}).get("request_id")
            headers = {"Connection": "close"} if exc.close else {}
            if exc.status == 503:
                headers["Retry-After"] = "1"
            await error_response(exc.status, exc.code, exc.message, rid, headers)(
                scope, receive, send
            )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            raise _Refused(413, "payload_too_large", f"request body over {self.max_bytes} bytes")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (a GET, a DELETE)
            return
        reader = _Reader(receive, self.timeout, self.max_bytes)
        if not _is_json(headers.get(b"content-type")):
            # Streamed to the app as it comes (the import spools it to a file).
            await self.app(scope, reader.receive, send)
            return
        if length is not None and int(length) <= self.big_bytes:
            body = await reader.read_all()
            await self.app(scope, _replay(body, receive, lambda: None), send)
            return
        reading, parsing = self._current_gates()
        self._in_flight += 1
        try:
            await self._read_and_call(scope, receive, send, reader, reading, parsing)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                # The last big body is gone: hand its freed memory back to the system.
                await anyio.to_thread.run_sync(_malloc_trim)

    async def _read_and_call(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        reader: _Reader,
        reading: asyncio.Semaphore,
        parsing: asyncio.Semaphore,
    ) -> None:
        async with _permit(reading, self.timeout):
            body = await reader.read_all()
            async with _permit(parsing, self.timeout) as release:
                if len(body) > self.big_bytes:
                    items = await count_json_items(body, self.max_items)
                    if items > self.max_items:
                        raise _Refused(
                            413,
                            "payload_too_large",
                            f"request body holds more than {self.max_items} JSON members, "
                            "elements and containers",
                        )
                # FastAPI decodes (and validates) the body in the same step of its task as
                # it receives it; the parse permit is handed on right after that step, not
                # at the end of the request, so a long batch insert does not hold it. The
                # read permit is held to the end: the body stays in memory until then.
                loop = asyncio.get_running_loop()
                await self.app(scope, _replay(body, receive, lambda: loop.call_soon(release)), send)

    def _current_gates(self) -> tuple[asyncio.Semaphore, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._gates = (asyncio.Semaphore(self.permits[0]), asyncio.Semaphore(self.permits[1]))
        return self._gates


def _malloc_trim() -> None:
    """glibc keeps freed heap memory for reuse: after a burst of big bodies the process
    stayed hundreds of MB above its resting size. ``malloc_trim(0)`` returns the free pages
    of every arena (and releases the GIL while it does); elsewhere there is nothing to do."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


@contextlib.asynccontextmanager
async def _permit(gate: asyncio.Semaphore, wait_s: float) -> AsyncIterator[Callable[[], None]]:
    """Hold one of ``gate``'s permits, waiting at most ``wait_s`` seconds (503 after); yields
    a function that gives it back early."""
    try:
        with anyio.fail_after(wait_s):
            await gate.acquire()
    except TimeoutError:
        raise _Refused(
            503,
            "service_unavailable",
            "too many large request bodies at once; retry shortly",
            close=True,
        ) from None
    held = True

    def release() -> None:
        nonlocal held
        if held:
            held = False
            gate.release()

    try:
        yield release
    finally:
        release()
