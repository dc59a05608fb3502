"""Row mapping, filter SQL and cursors of the SQLite record store."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import datetime
from typing import Any
from uuid import UUID

from ww.models import Episode, EpisodeContext, EpisodeFilter, FSRSState
from ww.models.procedural import Skill
from ww.models.semantic import Entity
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import InvalidCursorError

__all__ = [
    "EPISODE_COLUMNS",
    "decode_cursor",
    "episode_order",
    "episode_params",
    "filter_sql",
    "fsrs_from_row",
    "fsrs_params",
    "opt_ts",
    "row_to_episode",
]

EPISODE_COLUMNS = (
    "id, session_id, content, timestamp, ingested_at, speaker, source, project, context, "
    "metadata, external_id, outcome, importance, stability, difficulty, last_review, reps, "
    "lapses, access_count, last_accessed, value, archived, index_state"
)


def opt_ts(value: int | None) -> datetime | None:
    return from_micros(value) if value is not None else None


def fsrs_from_row(r: sqlite3.Row) -> FSRSState:
    """The FSRS columns every kind's table carries, in the names they all share."""
    return FSRSState(
        stability=r["stability"],
        difficulty=r["difficulty"],
        last_review=from_micros(r["last_review"]),
        reps=r["reps"],
        lapses=r["lapses"],
    )


def fsrs_params(f: FSRSState) -> tuple[float, float, int, int, int]:
    """``fsrs_from_row`` in reverse, in the column order every kind's table lists them."""
    return (f.stability, f.difficulty, to_micros(f.last_review), f.reps, f.lapses)


def memory_tail(r: sqlite3.Row) -> dict[str, Any]:
    """The fields of the columns an entity's or a skill's row ends with, its review state
    aside (``memory_tail_params`` in reverse)."""
    return {
        "access_count": r["access_count"],
        "last_accessed": opt_ts(r["last_accessed"]),
        "index_state": r["index_state"],
    }


def memory_tail_params(m: Entity | Skill) -> tuple[Any, ...]:
    """The columns an entity's or a skill's row ends with: review state, access statistics
    and index state."""
    last = to_micros(m.last_accessed) if m.last_accessed else None
    return (*fsrs_params(m.fsrs), m.access_count, last, m.index_state.value)


def row_to_episode(row: sqlite3.Row) -> Episode:
    return Episode(
        id=UUID(row["id"]),
        session_id=row["session_id"],
        content=row["content"],
        timestamp=from_micros(row["timestamp"]),
        ingested_at=from_micros(row["ingested_at"]),
        speaker=row["speaker"],
        source=row["source"],
        context=EpisodeContext.model_validate_json(row["context"]),
        metadata=json.loads(row["metadata"]),
        external_id=row["external_id"],
        outcome=row["outcome"],
        importance=row["importance"],
        fsrs=fsrs_from_row(row),
        access_count=row["access_count"],
        last_accessed=from_micros(row["last_accessed"]) if row["last_accessed"] else None,
        value=row["value"],
        archived=bool(row["archived"]),
        index_state=row["index_state"],
    )


def episode_params(ep: Episode) -> tuple[Any, ...]:
    return (
        str(ep.id),
        ep.session_id,
        ep.content,
        to_micros(ep.timestamp),
        to_micros(ep.ingested_at),
        ep.speaker,
        ep.source,
        ep.context.project,
        ep.context.model_dump_json(),
        json.dumps(ep.metadata, separators=(",", ":")),
        ep.external_id,
        ep.outcome.value,
        ep.importance,
        *fsrs_params(ep.fsrs),
        ep.access_count,
        to_micros(ep.last_accessed) if ep.last_accessed else None,
        ep.value,
        int(ep.archived),
        ep.index_state.value,
    )


def filter_sql(flt: EpisodeFilter, alias: str = "e") -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if not flt.include_archived:
        clauses.append(f"{alias}.archived = 0")
    if flt.time_from is not None:
        clauses.append(f"{alias}.timestamp >= ?")
        params.append(to_micros(flt.time_from))
    if flt.time_to is not None:
        clauses.append(f"{alias}.timestamp < ?")
        params.append(to_micros(flt.time_to))
    if flt.outcome is not None:
        clauses.append(f"{alias}.outcome = ?")
        params.append(flt.outcome.value)
    if flt.project is not None:
        clauses.append(f"{alias}.project = ?")
        params.append(flt.project)
    if flt.speaker is not None:
        clauses.append(f"{alias}.speaker = ?")
        params.append(flt.speaker)
    for key, value in flt.metadata.items():
        # Keys are validated against METADATA_KEY_PATTERN upstream; quoting keeps '.' literal.
        path = f'$."{key}"'
        if isinstance(value, bool):
            clauses.append(f"json_type({alias}.metadata, ?) = ?")
            params += [path, "true" if value else "false"]
        else:
            kind = "integer" if isinstance(value, int) else "text"
            clauses.append(
                f"json_type({alias}.metadata, ?) = ? AND json_extract({alias}.metadata, ?) = ?"
            )
            params += [path, kind, path, value]
    return (" AND ".join(clauses) or "1=1"), params


def episode_order(ep: Episode) -> int:
    """The column episode pages run along (``timestamp``), as stored."""
    return to_micros(ep.timestamp)


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, ident = json.loads(raw)
        if type(ts) is not int or not -(2**63) <= ts < 2**63:
            raise ValueError("cursor timestamp out of range")
        return ts, str(UUID(str(ident)))
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidCursorError("invalid cursor") from exc
