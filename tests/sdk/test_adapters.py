"""The SDK reads answers with pydantic adapters built once per type, not once per call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import httpx

from ww.cli._shared import jsonable as cli_jsonable
from ww.sdk._core import adapter_for, jsonable, parse_as


def test_an_answer_type_has_one_adapter() -> None:
    assert adapter_for(list[int]) is adapter_for(list[int])
    read = parse_as(list[int])
    assert read(httpx.Response(200, content=b"[1, 2]")) == [1, 2]


def test_an_unhashable_type_still_gets_an_adapter() -> None:
    kind = Annotated[int, {"note": "a dict cannot be hashed"}]
    adapter = adapter_for(kind)
    assert adapter.validate_python("3") == 3
    assert adapter_for(kind) is not adapter


def test_the_cli_writes_json_values_as_the_sdk_sends_them() -> None:
    value = {"id": uuid.UUID(int=1), "at": datetime(2026, 1, 2, tzinfo=UTC), "n": [1]}
    assert cli_jsonable is jsonable
    assert jsonable(value) == {
        "id": "00000000-0000-0000-0000-000000000001",
        "at": "2026-01-02T00:00:00Z",
        "n": [1],
    }
