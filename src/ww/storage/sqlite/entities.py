"""``EntityStore`` on the record store's SQLite file (entities, relations, access times)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid5

from ww.models.semantic import Entity, EntityFilter, Relation
from ww.storage.memories import EntityMethods, MemoryKind, cut_page
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports.entities import (
    RelationExistsError,
    RelationPage,
    VersionClosedError,
)
from ww.storage.sqlite.memories import SQLiteMemoryStore, row_as, rows_as
from ww.storage.sqlite.rows import fsrs_from_row, memory_tail, memory_tail_params, opt_ts

__all__ = ["ENTITY_KIND", "SQLiteEntityStore"]

ENTITY_COLUMNS = (
    "id, session_id, lineage_id, version, name, entity_type, summary, details, source, "
    "valid_from, valid_to, created_at, stability, difficulty, last_review, reps, lapses, "
    "access_count, last_accessed, index_state"
)
_RELATION_COLUMNS = (
    "id, session_id, source_id, target_id, relation_type, weight, created_at, "
    "last_strengthened, valid_from, valid_to"
)
_CHUNK = 500


def _row_to_entity(r: sqlite3.Row) -> Entity:
    return Entity(
        id=UUID(r["id"]),
        session_id=r["session_id"],
        lineage_id=UUID(r["lineage_id"]),
        version=r["version"],
        name=r["name"],
        entity_type=r["entity_type"],
        summary=r["summary"],
        details=r["details"],
        source=r["source"],
        valid_from=from_micros(r["valid_from"]),
        valid_to=opt_ts(r["valid_to"]),
        created_at=from_micros(r["created_at"]),
        fsrs=fsrs_from_row(r),
        **memory_tail(r),
    )


def _entity_params(e: Entity) -> tuple[Any, ...]:
    return (
        str(e.id),
        e.session_id,
        str(e.lineage_id),
        e.version,
        e.name,
        e.entity_type.value,
        e.summary,
        e.details,
        e.source,
        to_micros(e.valid_from),
        to_micros(e.valid_to) if e.valid_to else None,
        to_micros(e.created_at),
        *memory_tail_params(e),
    )


def _keyword_text(e: Entity) -> str:
    return f"{e.name} {e.summary} {e.details}"


def _row_to_relation(r: sqlite3.Row) -> Relation:
    return Relation(
        id=UUID(r["id"]),
        session_id=r["session_id"],
        source_id=UUID(r["source_id"]),
        target_id=UUID(r["target_id"]),
        relation_type=r["relation_type"],
        weight=r["weight"],
        created_at=from_micros(r["created_at"]),
        last_strengthened=from_micros(r["last_strengthened"]),
        valid_from=from_micros(r["valid_from"]),
        valid_to=opt_ts(r["valid_to"]),
    )


def entity_filter_sql(flt: EntityFilter, alias: str = "r") -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.entity_type is not None:
        clauses.append(f"{alias}.entity_type = ?")
        params.append(flt.entity_type.value)
    if flt.as_of is not None:
        ts = to_micros(flt.as_of)
        clauses.append(
            f"{alias}.valid_from <= ? AND ({alias}.valid_to IS NULL OR {alias}.valid_to > ?)"
        )
        params += [ts, ts]
    elif not flt.include_closed:
        clauses.append(f"{alias}.valid_to IS NULL")
    return (" AND ".join(clauses) or "1=1"), params


ENTITY_KIND: MemoryKind[Entity] = MemoryKind(
    key="ent",
    noun="entity",
    table="entities",
    label="WwEntity",
    columns=ENTITY_COLUMNS,
    order="valid_from",
    from_row=_row_to_entity,
    to_params=_entity_params,
    keyword_text=_keyword_text,
)


class SQLiteEntityStore(SQLiteMemoryStore[Entity, EntityFilter], EntityMethods):
    """Entities with their bi-temporal versions and relations; the rest is shared."""

    _session_tables = ("relations",)
    _kind = ENTITY_KIND
    _everything = EntityFilter(include_closed=True)

    def _filter_sql(self, flt: EntityFilter) -> tuple[str, list[Any]]:
        return entity_filter_sql(flt)

    async def supersede_entity(self, session_id: str, old_id: UUID, new: Entity) -> Entity:
        self._own(session_id, new)

        def tx(c: sqlite3.Connection) -> Entity:
            row = c.execute(
                f"SELECT {ENTITY_COLUMNS} FROM entities WHERE id = ? AND session_id = ?",
                (str(old_id), session_id),
            ).fetchone()
            if row is None:
                raise KeyError(str(old_id))
            old = _row_to_entity(row)
            if old.valid_to is not None:
                raise VersionClosedError(f"entity version {old_id} is already closed")
            closed = old.model_copy(update={"valid_to": new.valid_from})
            c.execute(
                "UPDATE entities SET valid_to = ? WHERE id = ?",
                (to_micros(new.valid_from), str(old_id)),
            )
            self._insert_row(c, new)
            # The graph carries over to the new version; the old version keeps its own
            # relations as history.
            for rel in c.execute(
                f"SELECT {_RELATION_COLUMNS} FROM relations WHERE session_id = ? "
                "AND (source_id = ? OR target_id = ?) AND valid_to IS NULL",
                (session_id, str(old_id), str(old_id)),
            ).fetchall():
                r = _row_to_relation(rel)
                src = new.id if r.source_id == old_id else r.source_id
                dst = new.id if r.target_id == old_id else r.target_id
                copy = r.model_copy(
                    update={
                        "id": _derived_id(r.id, new.id),
                        "source_id": src,
                        "target_id": dst,
                        "valid_from": new.valid_from,
                    }
                )
                c.execute(
                    f"INSERT OR IGNORE INTO relations ({_RELATION_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _relation_params(copy),
                )
            # Relations are bi-temporal too: the old version's close with it.
            c.execute(
                "UPDATE relations SET valid_to = ? WHERE session_id = ? "
                "AND (source_id = ? OR target_id = ?) AND valid_to IS NULL "
                "AND source_id != ? AND target_id != ?",
                (
                    to_micros(new.valid_from),
                    session_id,
                    str(old_id),
                    str(old_id),
                    str(new.id),
                    str(new.id),
                ),
            )
            return closed

        return await self._write(tx)

    async def history(self, session_id: str, lineage_id: UUID) -> list[Entity]:
        return await self._read(
            rows_as(
                _row_to_entity,
                f"SELECT {ENTITY_COLUMNS} FROM entities WHERE session_id = ? "
                "AND lineage_id = ? ORDER BY version",
                session_id,
                str(lineage_id),
            )
        )

    # -- recall -----------------------------------------------------------------------------
    async def matching_ids(self, session_id: str, flt: EntityFilter, cap: int) -> set[UUID] | None:
        where, params = entity_filter_sql(flt)

        def q(c: sqlite3.Connection) -> set[UUID] | None:
            rows = c.execute(
                f"SELECT r.id FROM entities r WHERE r.session_id = ? AND {where} LIMIT ?",
                (session_id, *params, cap + 1),
            ).fetchall()
            return None if len(rows) > cap else {UUID(r[0]) for r in rows}

        return await self._read(q)

    # -- relations --------------------------------------------------------------------------
    async def list_relations(self, session_id: str, limit: int, cursor: str | None) -> RelationPage:
        source = f"{_RELATION_COLUMNS} FROM relations"
        rows = await self._read(lambda c: self._id_page(c, source, session_id, limit, cursor))
        return RelationPage(*cut_page([_row_to_relation(r) for r in rows], limit))

    async def insert_relation(self, session_id: str, relation: Relation) -> None:
        if relation.session_id != session_id:
            raise ValueError("relation belongs to another session")

        def tx(c: sqlite3.Connection) -> None:
            try:
                c.execute(
                    f"INSERT INTO relations ({_RELATION_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _relation_params(relation),
                )
            except sqlite3.IntegrityError as exc:
                raise RelationExistsError(
                    f"a {relation.relation_type.value} relation from {relation.source_id} "
                    f"to {relation.target_id} already exists"
                ) from exc

        await self._write(tx)

    async def get_relation(self, session_id: str, relation_id: UUID) -> Relation | None:
        return await self._read(
            row_as(
                _row_to_relation,
                f"SELECT {_RELATION_COLUMNS} FROM relations WHERE id = ? AND session_id = ?",
                str(relation_id),
                session_id,
            )
        )

    async def relations_of(self, session_id: str, entity_id: UUID) -> list[Relation]:
        key = str(entity_id)
        return await self._read(
            rows_as(
                _row_to_relation,
                f"SELECT {_RELATION_COLUMNS} FROM relations WHERE session_id = ? "
                "AND (source_id = ? OR target_id = ?) ORDER BY weight DESC, id",
                session_id,
                key,
                key,
            )
        )

    async def delete_relation(self, session_id: str, relation_id: UUID) -> bool:
        return await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM relations WHERE id = ? AND session_id = ?",
                    (str(relation_id), session_id),
                ).rowcount
                == 1
            )
        )

    async def adjacency(
        self, session_id: str, ids: Sequence[UUID]
    ) -> dict[UUID, list[tuple[UUID, float]]]:
        keys = [str(i) for i in dict.fromkeys(ids)]

        def q(c: sqlite3.Connection) -> dict[UUID, list[tuple[UUID, float]]]:
            out: dict[UUID, list[tuple[UUID, float]]] = {UUID(k): [] for k in keys}
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for a, b in (("source_id", "target_id"), ("target_id", "source_id")):
                    for r in c.execute(
                        f"SELECT rel.{a}, rel.{b}, rel.weight FROM relations rel "
                        f"JOIN entities o ON o.id = rel.{b} "
                        f"WHERE rel.session_id = ? AND rel.{a} IN ({marks}) "
                        "AND rel.valid_to IS NULL AND o.valid_to IS NULL "
                        f"ORDER BY rel.{b}",
                        (session_id, *chunk),
                    ):
                        out[UUID(r[0])].append((UUID(r[1]), float(r[2])))
            return out

        return await self._read(q)


def _derived_id(relation_id: UUID, new_entity: UUID) -> UUID:
    # Deterministic, so a retried supersede cannot copy a relation twice.
    return uuid5(new_entity, str(relation_id))


def _relation_params(r: Relation) -> tuple[Any, ...]:
    return (
        str(r.id),
        r.session_id,
        str(r.source_id),
        str(r.target_id),
        r.relation_type.value,
        r.weight,
        to_micros(r.created_at),
        to_micros(r.last_strengthened),
        to_micros(r.valid_from),
        to_micros(r.valid_to) if r.valid_to else None,
    )
