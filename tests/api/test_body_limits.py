"""The bounds a request body meets before the app decodes it (``ww.api.limits``).

A JSON body of many tiny values is refused before ``json.loads`` would spend the event loop
on it; commas inside strings do not count; big bodies beyond the permits wait and then get
503; a body that stops arriving gets 408. The ASGI-level tests drive the middleware with
the messages a server would send, paced by the test.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from tests.api.helpers import assert_envelope, new_session_id
from ww.api.limits import BIG_BODY_BYTES, MAX_JSON_ITEMS, BodyGuardMiddleware, count_json_items

BATCH = "/api/v1/episodes/batch"


def _h(sid: str) -> dict[str, str]:
    return {"X-Session-ID": sid, "Content-Type": "application/json"}


def _tiny_batch(n: int) -> bytes:
    return b'{"episodes":[' + b",".join([b'{"content":"a"}'] * n) + b"]}"


def test_a_body_of_too_many_values_is_413_before_it_is_decoded(client: TestClient) -> None:
    body = _tiny_batch(MAX_JSON_ITEMS // 2 + 1)  # one "{" and one "," per item
    sid = new_session_id("tiny")
    r = client.post(BATCH, content=body, headers=_h(sid))
    err = assert_envelope(r, 413, "payload_too_large")
    assert "JSON members" in err["message"]
    # Under the bound it is decoded and validated as before: the batch cap answers.
    r = client.post(BATCH, content=_tiny_batch(1001), headers=_h(sid))
    assert_envelope(r, 422, "validation_error")


def test_commas_inside_strings_do_not_count(client: TestClient) -> None:
    # 10 episodes of 30,000 commas each: 300,000 in the raw bytes, ~20 outside strings.
    episodes = [{"content": "," * 30_000 + f"x{i}"} for i in range(10)]
    body = json.dumps({"episodes": episodes}).encode()
    assert body.count(b",") > MAX_JSON_ITEMS and len(body) > BIG_BODY_BYTES
    r = client.post(BATCH, content=body, headers=_h(new_session_id("commas")))
    assert r.status_code == 201, r.text
    assert r.json()["count"] == 10


def test_the_count_skips_strings_and_escapes() -> None:
    body = json.dumps({"a": ['x,"{[', 'y\\",', 1, 2], "b": {"c": 3}}).encode()
    # Outside strings: 3 containers and 4 commas; the raw bytes hold 11 of those bytes.
    rough = body.count(b",") + body.count(b"{") + body.count(b"[")
    assert rough == 11
    assert anyio.run(count_json_items, body, 100) == rough  # under the limit: not scanned
    assert anyio.run(count_json_items, body, 7) == 7  # scanned: strings skipped whole
    assert anyio.run(count_json_items, body, 0, 4) == 1  # stops at the slice passing the limit


_TEXT = st.text(alphabet=st.sampled_from(list('ab ,{}[]"\\:\n')), max_size=12)
_JSON = st.recursive(
    st.none() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=30,
)


def _items(value: Any) -> int:
    """Containers, plus the commas json.dumps writes between their members."""
    if isinstance(value, dict):
        return 1 + max(len(value) - 1, 0) + sum(_items(v) for v in value.values())
    if isinstance(value, list):
        return 1 + max(len(value) - 1, 0) + sum(_items(v) for v in value)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=_JSON, slice_bytes=st.integers(1, 64))
def test_the_count_matches_the_document_at_any_slice_size(value: Any, slice_bytes: int) -> None:
    body = json.dumps(value).encode()
    expected = _items(value)
    # A limit just under the true count forces the scan, whatever the raw bytes hold, and
    # the scan stops only once it has counted them all.
    assert anyio.run(count_json_items, body, expected - 1, slice_bytes) == expected


# -- the ASGI level: pacing and permits ------------------------------------------------------
async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body and answers 200 with its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _scope(length: int | None) -> Scope:
    headers = [(b"content-type", b"application/json")]
    if length is None:
        headers.append((b"transfer-encoding", b"chunked"))
    else:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": "POST", "path": "/", "headers": headers, "state": {}}


def _paced(pieces: list[bytes], pause_s: float, *, complete: bool = True) -> Receive:
    """The body in ``pieces``, one every ``pause_s`` seconds; then nothing, for ever.
    ``complete=False``: the last piece says more is coming, and nothing comes."""
    queue = list(pieces)

    async def receive() -> Message:
        if not queue:
            await anyio.sleep_forever()
        await anyio.sleep(pause_s)
        piece = queue.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(queue) or not complete}

    return receive


async def _call(
    guard: Callable[[Scope, Receive, Send], Awaitable[None]], scope: Scope, receive: Receive
) -> tuple[int, dict[str, Any] | str]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    status = int(sent[0]["status"])
    raw = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(raw) if status >= 400 else raw.decode())


def test_a_slow_but_steady_body_is_not_cut_and_a_stalled_one_gets_408() -> None:
    guard = BodyGuardMiddleware(_echo, max_bytes=1 << 20, timeout=0.5)

    async def main() -> None:
        # Six pieces 0.2 s apart: 1.2 s in all, more than the timeout, never idle for it.
        steady = _paced([b"[1,"] * 5 + [b"2]"], 0.2)
        assert await _call(guard, _scope(17), steady) == (200, "17")
        stalled = _paced([b"[1,"], 0.0, complete=False)  # 3 of the 17 bytes, then nothing
        status, body = await _call(guard, _scope(17), stalled)
        assert status == 408
        assert isinstance(body, dict) and body["error"]["code"] == "request_timeout"

    anyio.run(main)


@pytest.mark.parametrize("length", [BIG_BODY_BYTES + 1, None])
def test_big_bodies_beyond_the_permits_wait_then_get_503(length: int | None) -> None:
    guard = BodyGuardMiddleware(_echo, max_bytes=1 << 20, timeout=0.5, read_permits=1)
    size = BIG_BODY_BYTES + 1
    pieces = [b"[" + b" " * (size - 2), b"]"]

    async def main() -> None:
        results: list[tuple[int, Any]] = []

        async def holder() -> None:
            # Holds the one read permit for ~1 s, sending steadily.
            slow = _paced([b"["] + [b" "] * 4 + [b" " * (size - 6) + b"]"], 0.2)
            results.append(await _call(guard, _scope(length), slow))

        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            await anyio.sleep(0.05)
            status, body = await _call(guard, _scope(length), _paced(pieces, 0.0))
            assert status == 503 and isinstance(body, dict)
            assert body["error"]["code"] == "service_unavailable"
        assert results == [(200, str(size))]
        # With the permit free again, the same body goes through.
        assert await _call(guard, _scope(length), _paced(pieces, 0.0)) == (200, str(size))

    anyio.run(main)
