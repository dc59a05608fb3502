"""Node mapping, filter Cypher and keyword-index names of the Neo4j record store.

Episodes are stored with the SQLite store's column encoding (integer microseconds, JSON
text for context and metadata), so both stores round-trip an ``Episode`` exactly and share
the cursor format.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any, cast

from ww.models import Episode, EpisodeFilter
from ww.storage.payload import metadata_tag, to_micros
from ww.storage.sqlite.rows import EPISODE_COLUMNS, episode_params, row_to_episode

__all__ = [
    "ACCESS_APPEND",
    "COLUMNS",
    "NODE_COLUMN",
    "WHOLE_NODE",
    "episode_props",
    "filter_cypher",
    "fts_index",
    "fts_label",
    "fts_query",
    "fts_text",
    "kind_fts_index",
    "kind_fts_label",
    "metadata_tags",
    "newest_first",
    "node_props",
    "node_to_episode",
    "props_row",
    "session_key",
    "session_seek",
]

COLUMNS: tuple[str, ...] = tuple(c.strip() for c in EPISODE_COLUMNS.split(","))
# Every property of node ``e`` as one map, a row for ``node_to_episode`` and its kin: as
# column ``e`` of a plain ``RETURN`` (``NODE_COLUMN``) or of a ``listed`` one
# (``listed(e=WHOLE_NODE)``).
WHOLE_NODE = "e {.*}"
NODE_COLUMN = f"{WHOLE_NODE} AS e"


def session_key(session_id: str) -> str:
    # A hash makes any valid session id a safe Cypher identifier.
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


def fts_label(session_id: str) -> str:
    """The label that puts a session's episodes (and only them) in its full-text index."""
    return "WwS_" + session_key(session_id)


def fts_index(session_id: str) -> str:
    return "ww_fts_" + session_key(session_id)


def metadata_tags(metadata: dict[str, Any]) -> list[str]:
    """``key=tag`` for each filterable value: ``1``, ``"1"`` and ``true`` stay distinct, as
    SQLite's json_type check keeps them; nested values and floats are not filterable."""
    return [
        f"{k}={metadata_tag(v)}" for k, v in metadata.items() if isinstance(v, str | int | bool)
    ]


def episode_props(ep: Episode) -> dict[str, Any]:
    # Neo4j stores no null properties: absent keys read back as None in node_to_episode.
    props = {k: v for k, v in zip(COLUMNS, episode_params(ep), strict=True) if v is not None}
    props["archived"] = ep.archived
    props["meta_tags"] = metadata_tags(ep.metadata)
    props["content_fts"] = fts_text(ep.content)
    return props


def node_to_episode(props: dict[str, Any]) -> Episode:
    row = {k: props.get(k) for k in COLUMNS}
    # row_to_episode reads columns by name only, which a dict does as well as sqlite3.Row.
    return row_to_episode(cast(Any, row))


def fts_text(text: str) -> str:
    """What the full-text index sees: without diacritics, ``_`` as a word break.

    The built-in analyzers cannot both stem and fold accents, and Lucene keeps ``a_b`` as one
    word; folding here keeps keyword matches the same as SQLite's ``unicode61
    remove_diacritics 2`` tokenizer (``cafe`` finds ``café``, ``snake`` finds ``snake_case``).
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("_", " ")


def fts_query(terms: list[str]) -> str:
    """A Lucene query matching any term. Terms are ``\\w+`` words: quoting each one keeps
    Lucene's operators (AND, NOT, wildcards) out even if one spells a keyword."""
    return " OR ".join(f'"{fts_text(t)}"' for t in terms)


def filter_cypher(flt: EpisodeFilter, var: str = "e") -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if not flt.include_archived:
        clauses.append(f"{var}.archived = false")
    if flt.time_from is not None:
        clauses.append(f"{var}.timestamp >= $f_from")
        params["f_from"] = to_micros(flt.time_from)
    if flt.time_to is not None:
        clauses.append(f"{var}.timestamp < $f_to")
        params["f_to"] = to_micros(flt.time_to)
    if flt.outcome is not None:
        clauses.append(f"{var}.outcome = $f_outcome")
        params["f_outcome"] = flt.outcome.value
    if flt.project is not None:
        clauses.append(f"{var}.project = $f_project")
        params["f_project"] = flt.project
    if flt.speaker is not None:
        clauses.append(f"{var}.speaker = $f_speaker")
        params["f_speaker"] = flt.speaker
    if flt.metadata:
        clauses.append(f"all(t IN $f_tags WHERE t IN {var}.meta_tags)")
        params["f_tags"] = metadata_tags(dict(flt.metadata))
    return (" AND ".join(clauses) or "true"), params


# -- side stores: entities and skills --------------------------------------------------------
def kind_fts_label(kind: str, session_id: str) -> str:
    """The label that puts a session's records of ``kind`` in that kind's full-text index."""
    return f"Ww{kind.capitalize()}_" + session_key(session_id)


def kind_fts_index(kind: str, session_id: str) -> str:
    # The ``ww_fts_`` prefix is what the test harness's wipe drops.
    return f"ww_fts_{kind}_" + session_key(session_id)


def node_props(columns: str, values: tuple[Any, ...]) -> dict[str, Any]:
    """Column values as node properties. ``None`` stays in the map: ``SET n += map`` removes
    such a property, and ``SET n = map`` does not set it."""
    names = [c.strip() for c in columns.split(",")]
    return dict(zip(names, values, strict=True))


def props_row(columns: str, props: dict[str, Any]) -> Any:
    """A node's properties as the row the SQLite mapping reads by column name."""
    return {c.strip(): props.get(c.strip()) for c in columns.split(",")}


# Prepends ``$at`` to ``e.access_log`` and keeps the newest ``$cap`` (the node is ``e``).
ACCESS_APPEND = (
    "CALL (e) { UNWIND [$at] + coalesce(e.access_log, []) AS t WITH t ORDER BY t DESC "
    "RETURN collect(t)[0..$cap] AS log } SET e.access_log = log"
)


def session_seek(v: str, label: str, order: str) -> str:
    """The hint that makes a read of one session in ``order`` seek the session's
    ``(session_id, order, id)`` index. Such a read sorts by all three properties, session
    first (one value, so the order is the same): the index then gives the order and a
    ``LIMIT`` stops the read. Without the hint the planner chose a label scan and a sort
    while a session was small and kept that plan as it grew (1.6 s for one recall's
    neighbour lookup at 100,000 episodes)."""
    return f"USING INDEX SEEK {v}:{label}(session_id, {order}, id)"


def newest_first(label: str, order: str, where: str, *, after: bool) -> str:
    """Cypher for a page of one session's ``label`` nodes ``e`` that pass ``where``, newest
    ``order`` first, ids breaking ties (parameters ``$sid``, ``$n``; with ``after``, only
    nodes past the cursor ``$c_ts``, ``$c_id``).

    Each read is a ``session_seek``. Past a cursor, the rest of the cursor's instant
    and everything older are two such reads: as one condition they are an ``OR``, which
    the planner splits into a union of reads that loses the order and reads the session."""
    read = (
        f"MATCH (e:{label}) {session_seek('e', label, order)} "
        f"WHERE e.session_id = $sid AND {where} AND "
    )
    sort = f"ORDER BY e.session_id DESC, e.{order} DESC, e.id DESC LIMIT $n"
    if not after:
        return (
            f"{read}e.{order} IS NOT NULL AND e.id IS NOT NULL WITH e {sort} RETURN {NODE_COLUMN}"
        )
    same_instant = f"{read}e.{order} = $c_ts AND e.id < $c_id RETURN e {sort}"
    older = f"{read}e.{order} < $c_ts AND e.id IS NOT NULL RETURN e {sort}"
    return (
        f"CALL () {{ {same_instant} UNION {older} }} "
        f"WITH e ORDER BY e.{order} DESC, e.id DESC LIMIT $n RETURN {NODE_COLUMN}"
    )
