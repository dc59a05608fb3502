"""A JSON request body read whatever its ``Content-Type`` says.

The deployment guide's control examples send ``curl -d '{...}'`` without a content type, so
curl labels the JSON ``application/x-www-form-urlencoded``; FastAPI would then hand the raw
bytes to the model and answer 422. ``json_body(Model)`` reads the bytes itself and validates
them as JSON; a bad or empty body gets the same 422 envelope as any other. ``openapi_body(Model)``
documents the body as JSON, since FastAPI no longer sees it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

__all__ = ["json_body", "openapi_body"]

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency answering the request body parsed as ``model``."""

    async def parse(request: Request) -> M:
        raw = await request.body()
        try:
            # An empty body is not JSON, as for FastAPI: no body is no ``null``.
            data = json.loads(raw)
        except ValueError as exc:
            # As FastAPI reports it: the position, read against the body's text.
            pos = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            error = {"type": "json_invalid", "loc": ("body", pos), "msg": "JSON decode error"}
            text = raw.decode("utf-8", errors="replace")
            raise RequestValidationError([{**error, "ctx": {"error": msg}}], body=text) from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # Located under "body", as FastAPI's own errors are, for the envelope's message.
            errors = [
                {**e, "loc": ("body", *e["loc"])}
                for e in exc.errors(include_url=False, include_context=True)
            ]
            raise RequestValidationError(errors, body=data) from None

    parse.__name__ = parse.__qualname__ = f"{model.__name__.lower()}_body"
    return parse


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the operation's required JSON body."""
    schema = model.model_json_schema()
    if "$defs" in schema:  # refs into $defs would dangle in the operation
        raise TypeError(f"{model.__name__}: a JSON body here must not nest models")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
