"""One SQLite store for every kind of memory (entities, skills): what their stores share.

A kind's store subclasses ``SQLiteMemoryStore`` with its ``MemoryKind`` and its filter SQL,
and keeps only what really differs (entity versions and relations, skill versions and
executions). Rows live in the record store's file; it owns open and close.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from ww.models import IndexState
from ww.storage.memories import (
    ACCESS_SQL,
    Access,
    Memory,
    MemoryStoreCore,
    access_row,
    page_after,
)
from ww.storage.ports import IdConflictError, ScoredId
from ww.storage.sqlite.db import SQLiteDatabase
from ww.storage.sqlite.memfts import (
    access_times,
    append_access,
    kind_fts_delete,
    kind_fts_drop,
    kind_fts_put,
    kind_fts_search,
    replace_access,
)

__all__ = ["SQLiteMemoryStore", "by_ids", "indexed_count", "row_as", "rows_as"]

M = TypeVar("M", bound=Memory)
T = TypeVar("T")
F = TypeVar("F")
_CHUNK = 500


def by_ids(
    c: sqlite3.Connection,
    select: str,
    session_id: str,
    ids: Sequence[UUID],
    where: str = "1=1",
    params: Sequence[Any] = (),
    *,
    alias: str = "r",
    session_index: bool = True,
) -> list[sqlite3.Row]:
    """``select`` (ending in ``FROM <table> <alias>``) for the session's rows among ``ids``,
    in chunks under SQLite's variable limit. ``session_index=False`` (a unary +) stops SQLite
    from choosing the session index over the id lookups where that index would scan every
    row of the session."""
    keys = [str(i) for i in dict.fromkeys(ids)]
    session = f"{'' if session_index else '+'}{alias}.session_id"
    rows: list[sqlite3.Row] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows += c.execute(
            f"{select} WHERE {session} = ? AND {alias}.id IN ({marks}) AND {where}",
            (session_id, *chunk, *params),
        ).fetchall()
    return rows


def rows_as(
    convert: Callable[[sqlite3.Row], T], sql: str, *params: Any
) -> Callable[[sqlite3.Connection], list[T]]:
    """A read that maps each row ``sql`` selects with ``convert``."""
    return lambda c: [convert(r) for r in c.execute(sql, params)]


def row_as(
    convert: Callable[[sqlite3.Row], T], sql: str, *params: Any
) -> Callable[[sqlite3.Connection], T | None]:
    """A read that maps the one row ``sql`` selects with ``convert`` (None for no row)."""

    def q(c: sqlite3.Connection) -> T | None:
        row = c.execute(sql, params).fetchone()
        return None if row is None else convert(row)

    return q


class SQLiteMemoryStore(MemoryStoreCore[M, F]):
    """Shares ``db`` with the record store, which owns its lifecycle (open/close). A kind
    sets ``_kind`` and ``_everything`` and implements ``_filter_sql``."""

    # The kind's other tables whose rows of a session are deleted with it, before the
    # kind's own (relations for entities).
    _session_tables: tuple[str, ...] = ()

    def __init__(self, db: SQLiteDatabase) -> None:
        self._read = db.read
        self._write = db.write

    def _filter_sql(self, flt: F) -> tuple[str, list[Any]]:
        """``flt`` as a condition on alias ``r`` of the kind's table, and its parameters."""
        raise NotImplementedError

    def _rowid(self, c: sqlite3.Connection, session_id: str, memory_id: UUID) -> int | None:
        row = c.execute(
            f"SELECT rowid FROM {self._kind.table} WHERE id = ? AND session_id = ?",
            (str(memory_id), session_id),
        ).fetchone()
        return None if row is None else int(row[0])

    def _select(self, c: sqlite3.Connection, tail: str, params: Sequence[Any]) -> list[M]:
        """The kind's rows of ``SELECT <columns> FROM <table> r <tail>``."""
        k = self._kind
        rows = c.execute(f"SELECT {k.columns} FROM {k.table} r {tail}", params)
        return [k.from_row(r) for r in rows]

    # -- create, read, update, delete ---------------------------------------------------------
    def _insert_row(self, c: sqlite3.Connection, memory: M) -> None:
        k = self._kind
        marks = ", ".join("?" * len(k.names))
        try:
            cur = c.execute(
                f"INSERT INTO {k.table} ({k.columns}) VALUES ({marks})", k.to_params(memory)
            )
        except sqlite3.IntegrityError as exc:  # the only unique key is the id
            raise IdConflictError(f"{k.noun} id {memory.id} is already taken") from exc
        assert cur.lastrowid is not None
        kind_fts_put(c, k.key, memory.session_id, cur.lastrowid, k.keyword_text(memory))
        append_access(c, memory.session_id, [memory.id], memory.created_at)

    async def _insert(self, session_id: str, memory: M) -> None:
        self._own(session_id, memory)
        await self._write(lambda c: self._insert_row(c, memory))

    async def _get_many(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, M]:
        if not ids:
            return {}
        k = self._kind

        def q(c: sqlite3.Connection) -> dict[UUID, M]:
            rows = by_ids(c, f"SELECT {k.columns} FROM {k.table} r", session_id, ids)
            return {m.id: m for m in map(k.from_row, rows)}

        return await self._read(q)

    async def _page_rows(
        self, session_id: str, flt: F, n: int, after: tuple[int, str] | None
    ) -> list[M]:
        col = f"r.{self._kind.order}"
        where, params = self._filter_sql(flt)
        if after is not None:
            where += f" AND ({col}, r.id) < (?, ?)"
            params += after
        tail = f"WHERE r.session_id = ? AND {where} ORDER BY {col} DESC, r.id DESC LIMIT ?"
        return await self._read(lambda c: self._select(c, tail, (session_id, *params, n)))

    async def _update(
        self,
        session_id: str,
        memory: M,
        before: Callable[[sqlite3.Connection], None] | None = None,
    ) -> bool:
        """Overwrite the row (all but id and session), running ``before`` first in the same
        transaction when the row is there."""
        self._own(session_id, memory)
        k = self._kind
        params = k.to_params(memory)[2:]
        assignments = ", ".join(f"{col} = ?" for col in k.names[2:])

        def tx(c: sqlite3.Connection) -> bool:
            rowid = self._rowid(c, session_id, memory.id)
            if rowid is None:
                return False
            if before is not None:
                before(c)
            c.execute(f"UPDATE {k.table} SET {assignments} WHERE rowid = ?", (*params, rowid))
            kind_fts_put(c, k.key, session_id, rowid, k.keyword_text(memory))
            return True

        return await self._write(tx)

    async def _delete(self, session_id: str, memory_id: UUID) -> bool:
        k = self._kind

        def tx(c: sqlite3.Connection) -> bool:
            rowid = self._rowid(c, session_id, memory_id)
            if rowid is None:
                return False
            kind_fts_delete(c, k.key, session_id, rowid)
            c.execute("DELETE FROM access_log WHERE memory_id = ?", (str(memory_id),))
            # What hangs off the row goes with it (ON DELETE CASCADE).
            c.execute(f"DELETE FROM {k.table} WHERE rowid = ?", (rowid,))
            return True

        return await self._write(tx)

    async def delete_session(self, session_id: str) -> None:
        k = self._kind

        def tx(c: sqlite3.Connection) -> None:
            kind_fts_drop(c, k.key, session_id)
            c.execute(
                "DELETE FROM access_log WHERE session_id = ? AND memory_id IN "
                f"(SELECT id FROM {k.table} WHERE session_id = ?)",
                (session_id, session_id),
            )
            for table in (*self._session_tables, k.table):
                c.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))

        await self._write(tx)

    # -- index state, for the reconciler ------------------------------------------------------
    async def _set_index_state(
        self, session_id: str, ids: Sequence[UUID], state: IndexState
    ) -> None:
        rows = [(state.value, session_id, str(i)) for i in ids]
        sql = f"UPDATE {self._kind.table} SET index_state = ? WHERE session_id = ? AND id = ?"
        await self._write(lambda c: c.executemany(sql, rows))

    async def _pending(self, session_id: str, limit: int) -> list[M]:
        tail = "WHERE r.session_id = ? AND r.index_state = 'pending' LIMIT ?"
        return await self._read(lambda c: self._select(c, tail, (session_id, limit)))

    async def indexed_ids(self, session_id: str) -> set[UUID]:
        sql = f"SELECT id FROM {self._kind.table} WHERE session_id = ? AND index_state = 'indexed'"
        return await self._read(lambda c: {UUID(r[0]) for r in c.execute(sql, (session_id,))})

    async def indexed_count(self, session_id: str) -> int:
        return await self._read(lambda c: indexed_count(c, self._kind.table, session_id))

    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]:
        return await self.filter_ids(session_id, ids, self._everything)

    async def list_sessions(self) -> list[str]:
        sql = f"SELECT DISTINCT session_id FROM {self._kind.table}"
        return await self._read(lambda c: [r[0] for r in c.execute(sql)])

    # -- recall -------------------------------------------------------------------------------
    async def filter_ids(self, session_id: str, ids: Sequence[UUID], flt: F) -> set[UUID]:
        if not ids:
            return set()
        where, params = self._filter_sql(flt)
        select = f"SELECT r.id FROM {self._kind.table} r"
        return await self._read(
            lambda c: {UUID(r[0]) for r in by_ids(c, select, session_id, ids, where, params)}
        )

    async def keyword_search(
        self, session_id: str, query: str, flt: F, limit: int
    ) -> list[ScoredId]:
        k = self._kind
        where, params = self._filter_sql(flt)
        rows = await self._read(
            lambda c: kind_fts_search(c, k.key, session_id, query, k.table, where, params, limit)
        )
        return [ScoredId(i, s) for i, s in rows]

    async def _touch(
        self, session_id: str, sets: str, rows: Sequence[dict[str, Any]], at: datetime
    ) -> None:
        """Run ``SET <sets>`` (named parameters) for each row, whose ``id`` is the memory's,
        and log an access of each."""
        sql = f"UPDATE {self._kind.table} SET {sets} WHERE id = :id AND session_id = :sid"

        def tx(c: sqlite3.Connection) -> None:
            c.executemany(sql, [{**r, "sid": session_id} for r in rows])
            append_access(c, session_id, [UUID(r["id"]) for r in rows], at)

        await self._write(tx)

    async def _record_fsrs(self, session_id: str, updates: Sequence[Access], at: datetime) -> None:
        await self._touch(session_id, ACCESS_SQL, [access_row(u) for u in updates], at)

    @staticmethod
    def _id_page(
        c: sqlite3.Connection, source: str, session_id: str, limit: int, cursor: str | None
    ) -> list[sqlite3.Row]:
        """A page (``limit + 1`` rows, for ``cut_page``) of ``SELECT <source>`` (columns
        ``FROM`` a table) in id order: what an export walks through."""
        return c.execute(
            f"SELECT {source} WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?",
            (session_id, page_after(cursor), limit + 1),
        ).fetchall()

    async def access_times(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[datetime]]:
        return await self._read(lambda c: access_times(c, session_id, ids))

    async def replace_access_times(
        self, session_id: str, times: Mapping[UUID, Sequence[datetime]]
    ) -> None:
        await self._write(lambda c: replace_access(c, session_id, self._kind.table, times))


def indexed_count(c: sqlite3.Connection, table: str, session_id: str) -> int:
    """Rows of the session in ``table`` less its pending ones (the only other state)."""
    row = c.execute(
        f"SELECT (SELECT COUNT(*) FROM {table} WHERE session_id = ?1) - "
        f"(SELECT COUNT(*) FROM {table} WHERE session_id = ?1 AND index_state = 'pending')",
        (session_id,),
    ).fetchone()
    return int(row[0])
