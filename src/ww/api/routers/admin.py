"""``/api/v1/admin``: export and import of memories as JSON Lines.

These read and write every session, so they belong behind an operator's access control;
the admin key (``X-Admin-Key``) arrives with the security work. Format and rules:
``docs/export-format.md``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ww.api.errors import ApiError
from ww.api.routers.common import errors
from ww.config import SESSION_ID_PATTERN
from ww.engine.transfer.jsonl import (
    MEDIA_TYPE,
    ImportConflictError,
    ImportReport,
    InvalidImportError,
    ReembedMode,
    Transfer,
)
from ww.engine.transfer.kinds import Memories

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=errors(404, 409, 415))

# application/x-ndjson is the registered-in-practice name; the others are common aliases.
_ACCEPTED_TYPES = {MEDIA_TYPE, "application/jsonl", "application/json-lines"}
# Bodies up to this size stay in memory while import reads them twice; larger ones spill
# to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024


def _transfer(request: Request) -> Transfer:
    state = request.app.state
    return Transfer(Memories(state.engine, state.semantic, state.procedural))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "The export, streamed."}},
)
async def export(
    request: Request,
    session_id: Annotated[
        str | None,
        Query(
            pattern=SESSION_ID_PATTERN,
            max_length=128,
            description="Export only this session; default: every session.",
        ),
    ] = None,
    vectors: Annotated[
        bool, Query(description="Include each memory's vector, so import need not re-embed.")
    ] = True,
) -> StreamingResponse:
    """Stream every session (or one) as JSON Lines: a header, one line per record, and a
    trailer with the counts. Read page by page from the stores, never whole in memory."""
    transfer = _transfer(request)
    await transfer.check(vectors=vectors)  # 503 now rather than a truncated stream later
    if session_id is not None and not await transfer.has_session(session_id):
        raise ApiError(404, "session not found")
    name = f"ww-export-{session_id or 'all'}.jsonl"
    return StreamingResponse(
        transfer.export(session_id, vectors=vectors),
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _lines(spool: IO[bytes]) -> Iterator[bytes]:
    spool.seek(0)
    yield from spool


@router.post(
    "/import",
    response_model=ImportReport,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An export (JSON Lines), at most WW_API_MAX_BODY_BYTES.",
            "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
)
async def import_(
    request: Request,
    reembed: Annotated[
        ReembedMode,
        Query(
            description="auto: embed when the export's model differs from this server's or "
            "a line has no vector; always: embed everything; never: use the file's vectors."
        ),
    ] = ReembedMode.AUTO,
) -> ImportReport:
    """Upsert an export by id: importing the same file twice leaves the same state. The
    whole body is validated before anything is written."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in _ACCEPTED_TYPES:
        raise ApiError(415, f"send the export as {MEDIA_TYPE}")
    transfer = _transfer(request)
    # The body limit middleware has already bounded the size (413 beyond it).
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        try:
            return await transfer.import_lines(lambda: _lines(spool), reembed)
        except InvalidImportError as exc:
            status = 400 if exc.code == "malformed_line" else 422
            raise ApiError(status, str(exc), code=exc.code) from None
        except ImportConflictError as exc:
            raise ApiError(409, str(exc), code="import_conflict") from None
