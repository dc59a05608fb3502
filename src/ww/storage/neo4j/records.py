"""Server-tier record store on Neo4j 5, through the official async driver.

Episodes are ``:WwEpisode`` nodes keyed by ``id`` and carrying ``session_id``; every query
matches on the session, so a record of another session is simply not found. Sessions are
``:WwSession`` nodes and key/value metadata ``:WwMeta`` nodes.

Keyword recall uses one full-text (Lucene) index per session, over a per-session label that
only that session's episodes carry. Lucene's BM25 uses collection statistics, so one index
shared by every session would let one session's writes move another's keyword scores and
candidates: the same side channel that makes the embedded tier keep one keyword index per
session.

Constraints and the shared indexes are created in ``open()`` (``IF NOT EXISTS``, so every
start-up may run them); a session's full-text index is created the first time the session
is written to. Driver errors that mean "the database cannot be reached" become
``StoreUnavailableError("neo4j", ...)``, which the API answers with 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import cached_property, partial
from typing import Any, TypeVar
from uuid import UUID

from neo4j import AsyncManagedTransaction
from neo4j.exceptions import ClientError, ConstraintError

from ww.models import Episode, EpisodeFilter, IndexState, MemoryType, SessionStats
from ww.storage.index_state import IndexStateMarks
from ww.storage.memories import ACCESS_CYPHER, EpisodePages, access_row
from ww.storage.neo4j.driver import (
    UNAVAILABLE,
    Neo4jConnection,
    describe,
    id_keys,
    listed,
    tx_all,
    tx_consume,
    tx_counted,
    tx_list,
    tx_single,
)
from ww.storage.neo4j.rows import (
    NODE_COLUMN,
    WHOLE_NODE,
    episode_props,
    filter_cypher,
    fts_index,
    fts_label,
    fts_query,
    newest_first,
    node_to_episode,
    session_seek,
)
from ww.storage.neo4j.schema import SIDE_SCHEMA
from ww.storage.payload import from_micros, to_micros
from ww.storage.ports import (
    AccessUpdate,
    CandidateRow,
    IdConflictError,
    MemoryCount,
    ScoredId,
)
from ww.storage.query_terms import keyword_terms

__all__ = [
    "UNAVAILABLE",
    "Neo4jRecordStore",
    "describe",
    "tx_all",
    "tx_consume",
    "tx_single",
]

T = TypeVar("T")

# The Lucene analyzer of the keyword indexes: lower-casing, English stop words and Porter
# stemming, close to the SQLite store's ``porter unicode61`` tokenizer.
FTS_ANALYZER = "english"

SCHEMA: tuple[str, ...] = (
    "CREATE CONSTRAINT ww_meta_key IF NOT EXISTS FOR (m:WwMeta) REQUIRE m.key IS UNIQUE",
    "CREATE CONSTRAINT ww_session_id IF NOT EXISTS "
    "FOR (s:WwSession) REQUIRE s.session_id IS UNIQUE",
    "CREATE CONSTRAINT ww_episode_id IF NOT EXISTS FOR (e:WwEpisode) REQUIRE e.id IS UNIQUE",
    # Listing, cursors and the timeline walk of neighbours read a session in time order.
    "CREATE INDEX ww_episode_session_time IF NOT EXISTS "
    "FOR (e:WwEpisode) ON (e.session_id, e.timestamp, e.id)",
    "CREATE INDEX ww_episode_session_state IF NOT EXISTS "
    "FOR (e:WwEpisode) ON (e.session_id, e.index_state)",
    # The pending-vector backlog over every session (memory_counts, for the metrics).
    "CREATE INDEX ww_episode_state IF NOT EXISTS FOR (e:WwEpisode) ON (e.index_state)",
    "CREATE INDEX ww_entity_state IF NOT EXISTS FOR (e:WwEntity) ON (e.index_state)",
    "CREATE INDEX ww_skill_state IF NOT EXISTS FOR (e:WwSkill) ON (e.index_state)",
)


def _nearest(v: str, *, before: bool) -> str:
    """A subquery giving ``prev`` (``before``) or ``next``: the id of the episode nearest
    to key ``k`` on that side of the session's timeline, in a list (empty at the end).

    The nearest at ``k``'s own time (ids break the tie) and the nearest at another time
    are two ``session_seek`` reads, each a conjunction the index answers in order,
    stopping at one entry. As one condition the tie-break is an OR, which the planner
    splits into a union of reads that loses the order and reads the whole session."""
    op, desc = ("<", " DESC") if before else (">", "")
    order = f"{v}.session_id{desc}, {v}.timestamp{desc}, {v}.id{desc}"
    seek = session_seek(v, "WwEpisode", "timestamp")
    read = f"MATCH ({v}:WwEpisode) {seek} WHERE {v}.session_id = $sid AND "
    same_time = f"{read}{v}.timestamp = k.ts AND {v}.id {op} k.id"
    other_time = f"{read}{v}.timestamp {op} k.ts AND {v}.id IS NOT NULL"
    one = f"RETURN {v} ORDER BY {order} LIMIT 1"
    return (
        f"CALL (k) {{ CALL (k) {{ {same_time} {one} UNION {other_time} {one} }} "
        f"WITH {v} ORDER BY {v}.timestamp{desc}, {v}.id{desc} LIMIT 1 "
        f"RETURN collect({v}.id) AS {'prev' if before else 'next'} }}"
    )


# How many keyword matches past the limit a search reads, so that ties at the cut still
# break on the id (``keyword_hits``).
_KEYWORD_TIE_ROOM = 100


class Neo4jRecordStore(EpisodePages, IndexStateMarks, Neo4jConnection):
    """``RecordStore`` on Neo4j 5 (connection options: ``ConnectionOptions``)."""

    @cached_property
    def _fts_ready(self) -> set[str]:
        """Full-text indexes (by name) this process has seen online."""
        return set()

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        await self._connect(SCHEMA + SIDE_SCHEMA)

    async def check(self) -> None:
        await self._read(tx_single("RETURN 1 AS ok", {}))

    async def _rows(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._read(tx_all(query, params))

    # -- shared with the side stores (entities, skills, learning, consolidation) -------------
    async def read(self, work: Callable[[AsyncManagedTransaction], Awaitable[T]]) -> T:
        """Run ``work`` in a read transaction (retried by the driver)."""
        return await self._tx(False, work)

    async def write(self, work: Callable[[AsyncManagedTransaction], Awaitable[T]]) -> T:
        """Run ``work`` in a write transaction (retried by the driver)."""
        return await self._tx(True, work)

    async def rows(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._read(tx_all(query, params))

    async def listed_rows(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of ``query``, which returns them ``listed`` (the way for many rows)."""
        return await self._read(tx_list(query, params))

    # -- per-session keyword indexes ----------------------------------------------------------
    async def ensure_fulltext(self, index: str, label: str, prop: str) -> None:
        """Create the full-text index ``index`` over ``label.prop`` and wait until it is online."""
        if index in self._fts_ready:
            return
        create = (
            f"CREATE FULLTEXT INDEX {index} IF NOT EXISTS FOR (e:{label}) ON EACH [e.{prop}] "
            "OPTIONS {indexConfig: {`fulltext.analyzer`: $analyzer, "
            "`fulltext.eventually_consistent`: false}}"
        )
        await self._create_index(create, {"analyzer": FTS_ANALYZER})
        # A new index is queryable only once it is online (immediate for an empty label).
        await self._read(tx_consume("CALL db.awaitIndex($name, 60)", {"name": index}))
        self._fts_ready.add(index)

    async def fulltext_online(self, index: str) -> bool:
        if index in self._fts_ready:
            return True
        rows = await self._rows(
            "SHOW FULLTEXT INDEXES YIELD name, state WHERE name = $name RETURN state",
            {"name": index},
        )
        if not rows:
            return False
        if rows[0]["state"] != "ONLINE":
            await self._read(tx_consume("CALL db.awaitIndex($name, 60)", {"name": index}))
        self._fts_ready.add(index)
        return True

    async def drop_fulltext(self, index: str) -> None:
        self._fts_ready.discard(index)
        await self._write(tx_consume(f"DROP INDEX {index} IF EXISTS", {}))

    async def fulltext_search(
        self, index: str, query: str, params: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """Run ``query`` (which calls ``$index`` and returns its rows ``listed``) if the index
        is online; None when it is not (any more: another worker dropped it with its session)."""
        if not await self.fulltext_online(index):
            return None
        try:
            return await self.listed_rows(query, {**params, "index": index})
        except ClientError:
            self._fts_ready.discard(index)
            if await self.fulltext_online(index):
                raise
            return None

    async def keyword_hits(
        self,
        index: str,
        session_id: str,
        query: str,
        where: Callable[[], tuple[str, dict[str, Any]]],
        limit: int,
    ) -> list[ScoredId]:
        """A keyword search of ``index`` (any kind's), best first, of the nodes that pass
        ``where()`` (a Cypher condition on ``e`` and its parameters)."""
        terms = keyword_terms(query)
        if not terms:
            return []
        condition, params = where()
        # The index returns matches best first and lazily; the filters run on that stream,
        # so a rare filter match ranked far down is still found. The session check guards
        # against a label ever applied to a foreign node. Only the stream's first
        # ``limit + _KEYWORD_TIE_ROOM`` survivors are sorted for the id tie-break: sorting
        # every match read all of them (62 ms against 9 ms at 100k memories, same hits);
        # the answer differs only if more than that many tie at the cut.
        cypher = (
            "CALL db.index.fulltext.queryNodes($index, $q) YIELD node AS e, score "
            f"WHERE e.session_id = $sid AND {condition} "
            "WITH e, score LIMIT $read "
            "WITH e.id AS id, score ORDER BY score DESC, id LIMIT $n "
            f"{listed(id='id', score='score')}"
        )
        args = {
            **params,
            "q": fts_query(terms),
            "sid": session_id,
            "n": limit,
            "read": limit + _KEYWORD_TIE_ROOM,
        }
        rows = await self.fulltext_search(index, cypher, args)
        return [ScoredId(UUID(r["id"]), float(r["score"])) for r in rows or []]

    async def _ensure_fts(self, session_id: str) -> None:
        await self.ensure_fulltext(fts_index(session_id), fts_label(session_id), "content_fts")

    # -- meta -------------------------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None:
        rows = await self._rows("MATCH (m:WwMeta {key: $key}) RETURN m.value AS v", {"key": key})
        return None if not rows else str(rows[0]["v"])

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            tx_consume(
                "MERGE (m:WwMeta {key: $key}) SET m.value = $value", {"key": key, "value": value}
            )
        )

    # -- sessions ---------------------------------------------------------------------------
    async def ensure_session(self, session_id: str, now: datetime) -> None:
        await self._write(
            tx_consume(
                "MERGE (s:WwSession {session_id: $sid}) ON CREATE SET s.created_at = $ts "
                "SET s.last_activity = $ts",
                {"sid": session_id, "ts": to_micros(now)},
            )
        )
        await self._ensure_fts(session_id)

    async def warm(self) -> int:
        # Neo4j keeps its full-text indexes itself: nothing here to load ahead.
        return 0

    async def list_sessions(self) -> list[str]:
        rows = await self._rows("MATCH (s:WwSession) RETURN s.session_id AS sid ORDER BY sid", {})
        return [str(r["sid"]) for r in rows]

    async def session_stats(self, session_id: str) -> SessionStats | None:
        rows = await self._rows(
            _STATS.format(where="s.session_id = $sid"), {"sid": session_id, "limit": 1}
        )
        return _stats(rows[0]) if rows else None

    async def session_stats_page(self, limit: int, after: str | None) -> list[SessionStats]:
        rows = await self._rows(
            _STATS.format(where="$after IS NULL OR s.session_id > $after"),
            {"after": after, "limit": limit},
        )
        return [_stats(r) for r in rows]

    async def memory_counts(self) -> dict[MemoryType, MemoryCount]:
        row = await self._read(tx_single(_COUNTS, {}))
        return {
            kind: MemoryCount(row[f"{label}_n"], row[f"{label}_pending"])
            for kind, label in _LABELS.items()
        }

    async def delete_session(self, session_id: str) -> int:
        async def tx(t: AsyncManagedTransaction) -> int:
            result = await t.run(
                "MATCH (e:WwEpisode {session_id: $sid}) DETACH DELETE e RETURN count(*) AS n",
                {"sid": session_id},
            )
            record = await result.single(strict=True)
            await t.run("MATCH (s:WwSession {session_id: $sid}) DELETE s", {"sid": session_id})
            return int(record["n"])

        n = await self._write(tx)
        # After the data: a failure here leaves an empty index, which ensure_session reuses.
        await self.drop_fulltext(fts_index(session_id))
        return n

    # -- episodes ---------------------------------------------------------------------------
    async def insert_episodes(self, session_id: str, episodes: Sequence[Episode]) -> None:
        if any(ep.session_id != session_id for ep in episodes):
            raise ValueError("episode belongs to another session")
        if not episodes:
            return
        await self._ensure_fts(session_id)
        # One transaction for the whole batch: all of it is stored or none.
        try:
            await self._write(
                tx_consume(
                    f"UNWIND $rows AS row CREATE (e:WwEpisode:{fts_label(session_id)}) SET e = row",
                    {"rows": [episode_props(ep) for ep in episodes]},
                )
            )
        except ConstraintError as exc:
            raise IdConflictError(f"an episode id is already taken: {describe(exc)}") from exc

    async def insert_new_external(
        self, session_id: str, episodes: Sequence[Episode], *, all_or_nothing: bool
    ) -> dict[str, UUID]:
        if any(ep.session_id != session_id for ep in episodes):
            raise ValueError("episode belongs to another session")
        if not episodes:
            return {}
        await self._ensure_fts(session_id)
        wanted = sorted({ep.external_id for ep in episodes if ep.external_id is not None})
        label = fts_label(session_id)

        async def tx(t: AsyncManagedTransaction) -> dict[str, UUID]:
            # Write-lock the session's node before looking: two of these calls on one
            # session, in any workers, then check and insert one after the other.
            result = await t.run(
                "MERGE (s:WwSession {session_id: $sid}) SET s.ww_lock = true REMOVE s.ww_lock",
                {"sid": session_id},
            )
            await result.consume()
            result = await t.run(
                "MATCH (e:WwEpisode) WHERE e.session_id = $sid AND e.external_id IN $exts "
                "RETURN e.external_id AS ext, e.id AS id ORDER BY e.ingested_at, e.id",
                {"sid": session_id, "exts": wanted},
            )
            known: dict[str, UUID] = {}
            async for record in result:
                known.setdefault(record["ext"], UUID(record["id"]))
            fresh = [ep for ep in episodes if ep.external_id not in known]
            if fresh and not (known and all_or_nothing):
                result = await t.run(
                    f"UNWIND $rows AS row CREATE (e:WwEpisode:{label}) SET e = row",
                    {"rows": [episode_props(ep) for ep in fresh]},
                )
                await result.consume()
            return known

        try:
            return await self._write(tx)
        except ConstraintError as exc:
            raise IdConflictError(f"an episode id is already taken: {describe(exc)}") from exc

    async def get_episode(self, session_id: str, episode_id: UUID) -> Episode | None:
        rows = await self._rows(
            f"MATCH (e:WwEpisode {{id: $id}}) WHERE e.session_id = $sid RETURN {NODE_COLUMN}",
            {"id": str(episode_id), "sid": session_id},
        )
        return node_to_episode(rows[0]["e"]) if rows else None

    async def get_episodes(self, session_id: str, ids: Sequence[UUID]) -> dict[UUID, Episode]:
        if not ids:
            return {}
        rows = await self.listed_rows(
            "UNWIND $ids AS i MATCH (e:WwEpisode {id: i}) WHERE e.session_id = $sid "
            f"{listed(e=WHOLE_NODE)}",
            {"ids": id_keys(ids), "sid": session_id},
        )
        episodes = (node_to_episode(r["e"]) for r in rows)
        return {ep.id: ep for ep in episodes}

    async def _episode_page(
        self, session_id: str, flt: EpisodeFilter, n: int, after: tuple[int, str] | None
    ) -> list[Episode]:
        where, params = filter_cypher(flt)
        if after is not None:
            params |= {"c_ts": after[0], "c_id": after[1]}
        rows = await self._rows(
            newest_first("WwEpisode", "timestamp", where, after=after is not None),
            {**params, "sid": session_id, "n": n},
        )
        return [node_to_episode(r["e"]) for r in rows]

    async def update_episode(self, session_id: str, episode: Episode) -> bool:
        if episode.session_id != session_id:
            raise ValueError("episode belongs to another session")
        # ``SET e = row`` replaces every property; the labels (and so the session's keyword
        # index, which re-indexes the new content on commit) stay.
        return await self._write(
            tx_counted(
                "MATCH (e:WwEpisode {id: $id}) WHERE e.session_id = $sid SET e = $row "
                "RETURN count(e) AS n",
                {"id": str(episode.id), "sid": session_id, "row": episode_props(episode)},
            )
        )

    async def delete_episode(self, session_id: str, episode_id: UUID) -> bool:
        return await self._write(
            tx_counted(
                "MATCH (e:WwEpisode {id: $id}) WHERE e.session_id = $sid "
                "DETACH DELETE e RETURN count(*) AS n",
                {"id": str(episode_id), "sid": session_id},
            )
        )

    async def _set_index_state(
        self, session_id: str, ids: Sequence[UUID], state: IndexState
    ) -> None:
        if not ids:
            return
        await self._write(
            tx_consume(
                "UNWIND $ids AS i MATCH (e:WwEpisode {id: i}) WHERE e.session_id = $sid "
                "SET e.index_state = $state",
                {"ids": id_keys(ids), "sid": session_id, "state": state.value},
            )
        )

    async def indexed_ids(self, session_id: str) -> set[UUID]:
        rows = await self._rows(
            "MATCH (e:WwEpisode {session_id: $sid, index_state: 'indexed'}) RETURN e.id AS id",
            {"sid": session_id},
        )
        return {UUID(r["id"]) for r in rows}

    async def indexed_count(self, session_id: str) -> int:
        rows = await self._rows(
            "MATCH (e:WwEpisode {session_id: $sid, index_state: 'indexed'}) RETURN count(e) AS n",
            {"sid": session_id},
        )
        return int(rows[0]["n"])

    async def pending_episodes(
        self, session_id: str, limit: int, ingested_before: datetime | None = None
    ) -> list[Episode]:
        cutoff = to_micros(ingested_before) if ingested_before is not None else 2**63 - 1
        rows = await self._rows(
            "MATCH (e:WwEpisode {session_id: $sid, index_state: 'pending'}) "
            f"WHERE e.ingested_at < $cutoff RETURN {NODE_COLUMN} LIMIT $n",
            {"sid": session_id, "cutoff": cutoff, "n": limit},
        )
        return [node_to_episode(r["e"]) for r in rows]

    async def existing_ids(self, session_id: str, ids: Sequence[UUID]) -> set[UUID]:
        if not ids:
            return set()
        rows = await self._rows(
            "UNWIND $ids AS i MATCH (e:WwEpisode {id: i}) WHERE e.session_id = $sid "
            "RETURN e.id AS id",
            {"ids": id_keys(ids), "sid": session_id},
        )
        return {UUID(r["id"]) for r in rows}

    async def keyword_search(
        self, session_id: str, query: str, flt: EpisodeFilter, limit: int
    ) -> list[ScoredId]:
        return await self.keyword_hits(
            fts_index(session_id), session_id, query, partial(filter_cypher, flt), limit
        )

    async def candidate_rows(
        self, session_id: str, ids: Sequence[UUID], flt: EpisodeFilter
    ) -> dict[UUID, CandidateRow]:
        if not ids:
            return {}
        where, params = filter_cypher(flt)
        columns = listed(
            id="e.id",
            ts="e.timestamp",
            importance="e.importance",
            speaker="e.speaker",
            stability="e.stability",
            last_review="e.last_review",
        )
        rows = await self.listed_rows(
            "UNWIND $ids AS i MATCH (e:WwEpisode {id: i}) "
            f"WHERE e.session_id = $sid AND {where} {columns}",
            {**params, "ids": id_keys(ids), "sid": session_id},
        )
        out: dict[UUID, CandidateRow] = {}
        for r in rows:
            ident = UUID(r["id"])
            out[ident] = CandidateRow(
                ident, r["ts"], r["importance"], r["speaker"], r["stability"], r["last_review"]
            )
        return out

    async def neighbours(
        self, session_id: str, rows: Sequence[CandidateRow]
    ) -> dict[UUID, tuple[UUID, ...]]:
        if not rows:
            return {}
        keys = [{"id": str(r.id), "ts": r.timestamp_us} for r in rows]
        # Each side is its own subquery that aggregates, so a row without a neighbour on
        # that side still yields (an empty list) instead of dropping out.
        found = await self.listed_rows(
            f"UNWIND $keys AS k {_nearest('p', before=True)} {_nearest('n', before=False)} "
            f"{listed(id='k.id', near='prev + next')}",
            {"keys": keys, "sid": session_id},
        )
        return {UUID(r["id"]): tuple(UUID(n) for n in r["near"]) for r in found}

    async def record_access(self, session_id: str, updates: Sequence[AccessUpdate]) -> None:
        if not updates:
            return
        # Locking in id order keeps concurrent recalls over the same episodes from
        # deadlocking each other.
        rows = sorted((access_row(u) for u in updates), key=lambda r: str(r["id"]))
        await self._write(
            tx_consume(
                "UNWIND $rows AS u MATCH (e:WwEpisode {id: u.id}) WHERE e.session_id = $sid "
                f"SET {ACCESS_CYPHER}",
                {"rows": rows, "sid": session_id},
            )
        )


# A page of sessions with the counts of every kind of memory, counted for the page only.
_STATS = (
    "MATCH (s:WwSession) WHERE {where} "
    "WITH s ORDER BY s.session_id LIMIT $limit "
    "CALL (s) {{ OPTIONAL MATCH (e:WwEpisode {{session_id: s.session_id}}) "
    "RETURN count(e) AS n, sum(CASE WHEN e.archived THEN 1 ELSE 0 END) AS archived, "
    "sum(CASE WHEN e.index_state = 'pending' THEN 1 ELSE 0 END) AS pending, "
    "sum(size(e.content)) AS chars }} "
    "RETURN s.session_id AS sid, s.created_at AS created, s.last_activity AS active, "
    "n AS episodes, archived, pending, chars AS content_chars, "
    "COUNT {{ MATCH (x:WwEntity {{session_id: s.session_id}}) }} AS entities, "
    "COUNT {{ MATCH (k:WwSkill {{session_id: s.session_id}}) }} AS skills "
    "ORDER BY sid"
)


_LABELS = {
    MemoryType.EPISODE: "WwEpisode",
    MemoryType.ENTITY: "WwEntity",
    MemoryType.SKILL: "WwSkill",
}
# A label's count comes from Neo4j's count store; the pending ones from its index_state index.
_COUNTS = "RETURN " + ", ".join(
    f"COUNT {{ MATCH (:{label}) }} AS {label}_n, "
    f"COUNT {{ MATCH (x:{label}) WHERE x.index_state = 'pending' }} AS {label}_pending"
    for label in _LABELS.values()
)
# The statement's columns named as SessionStats's fields.
_STAT_FIELDS = ("episodes", "archived", "pending", "entities", "skills", "content_chars")


def _stats(r: dict[str, Any]) -> SessionStats:
    counts = {k: r[k] for k in _STAT_FIELDS}
    return SessionStats(
        session_id=r["sid"],
        created_at=from_micros(r["created"]),
        last_activity=from_micros(r["active"]) if r["active"] is not None else None,
        **counts,
    )
