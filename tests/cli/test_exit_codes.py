"""Every error status a server can answer maps to the exit code docs/cli.md gives it."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from ww.cli._shared import Exit, exit_code
from ww.sdk import APIConnectionError, APITimeoutError, error_for

DOCUMENTED = {
    404: Exit.NOT_FOUND,
    401: Exit.AUTH,
    403: Exit.AUTH,
    429: Exit.UNAVAILABLE,
    503: Exit.UNAVAILABLE,
    507: Exit.UNAVAILABLE,
    400: Exit.REFUSED,
    409: Exit.REFUSED,
    413: Exit.REFUSED,
    422: Exit.REFUSED,
}


@given(st.integers(min_value=400, max_value=599))
def test_each_error_status_has_its_documented_code(status: int) -> None:
    envelope = {"error": {"code": "x", "message": "m", "request_id": "r"}}
    error = error_for(httpx.Response(status, json=envelope))
    assert exit_code(error) == DOCUMENTED.get(status, Exit.FAILED)


def test_no_answer_is_unavailable_and_anything_else_failed() -> None:
    assert exit_code(APIConnectionError("refused")) == Exit.UNAVAILABLE
    assert exit_code(APITimeoutError("slow")) == Exit.UNAVAILABLE
    assert exit_code(RuntimeError("bug")) == Exit.FAILED
