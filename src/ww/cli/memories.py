"""The memory commands: ``store``, ``recall``, ``feedback``, ``consolidate`` and one group
per kind (``episodes``, ``entities``, ``skills``). What the three kinds answer alike
(list, get, delete, recall) is built once, by ``kind_group``, from a ``Kind``."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ww.cli._shared import Exit, JsonOpt, connection, emit, fail, record_table, reply, rows_table
from ww.sdk import WorldWeaver

__all__ = ["KINDS", "Kind", "kind_group", "register"]

MemoryId = Annotated[str, typer.Argument(help="The memory's id.")]
Limit = Annotated[int, typer.Option("--limit", "-n", min=1, help="How many (per page).")]


def summary(memory: Any) -> str:
    """One line saying what a memory is, whatever its kind."""
    for field in ("content", "summary", "task"):
        text = getattr(memory, field, None)
        if text:
            name = getattr(memory, "name", None)
            return f"{name}: {text}" if name and field != "content" else str(text)
    return str(getattr(memory, "name", ""))


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of memory: its group's name, its SDK resource and its list's columns."""

    name: str
    resource: Callable[[WorldWeaver], Any]
    columns: Mapping[str, Callable[[Any], Any]]


KINDS = (
    Kind(
        "episodes",
        lambda ww: ww.episodes,
        {
            "id": lambda m: m.id,
            "when": lambda m: m.timestamp,
            "speaker": lambda m: m.speaker,
            "content": summary,
        },
    ),
    Kind(
        "entities",
        lambda ww: ww.entities,
        {
            "id": lambda m: m.id,
            "type": lambda m: m.entity_type,
            "name": lambda m: m.name,
            "summary": lambda m: m.summary,
        },
    ),
    Kind(
        "skills",
        lambda ww: ww.skills,
        {
            "id": lambda m: m.id,
            "name": lambda m: m.name,
            "domain": lambda m: m.domain,
            "task": lambda m: m.task,
        },
    ),
)

HIT_COLUMNS: Mapping[str, Callable[[Any], Any]] = {
    "score": lambda h: f"{h.score:.3f}",
    "type": lambda h: h.memory_type,
    "id": lambda h: h.id,
    "memory": lambda h: summary(getattr(h, "memory", None) or _hit_memory(h)),
}


def _hit_memory(hit: Any) -> Any:
    """The memory of a kind's own recall hit (``episode``, ``entity`` or ``skill``)."""
    return next(getattr(hit, f) for f in ("episode", "entity", "skill") if hasattr(hit, f))


def parse_where(where: list[str], allowed: Callable[..., Any]) -> dict[str, str]:
    """``--where key=value`` pairs, checked against the list operation's own filters."""
    names = set(inspect.signature(allowed).parameters) - {"self", "limit", "cursor"}
    filters: dict[str, str] = {}
    for pair in where:
        key, sep, value = pair.partition("=")
        if not sep or key not in names:
            fail(f"--where {pair!r}: use key=value with key one of {sorted(names)}", Exit.USAGE)
        filters[key] = value
    return filters


def kind_group(kind: Kind) -> typer.Typer:
    """``ww <kind> list|get|delete|recall``, the same for every kind."""
    group = typer.Typer(help=f"List, read, recall and delete {kind.name}.", no_args_is_help=True)

    @group.command("list")
    def list_(
        ctx: typer.Context,
        limit: Limit = 50,
        every: Annotated[
            bool, typer.Option("--all", help="Every page, not only the first.")
        ] = False,
        where: Annotated[
            list[str] | None, typer.Option(help="A filter of the list, key=value (repeatable).")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """The newest first, one page (or --all)."""
        with connection(ctx).client() as ww:
            res = kind.resource(ww)
            filters = parse_where(where or [], type(res).list.build)
            items = (
                list(res.list_all(limit=limit, **filters))
                if every
                else res.list(limit=limit, **filters).items
            )
        emit(items, as_json, lambda rows: rows_table(rows, kind.columns, title=kind.name))

    @group.command("get")
    def get(ctx: typer.Context, memory_id: MemoryId, as_json: JsonOpt = False) -> None:
        """One memory, every field."""
        reply(ctx, as_json, lambda ww: kind.resource(ww).get(memory_id), record_table)

    @group.command("delete")
    def delete(ctx: typer.Context, memory_id: MemoryId, as_json: JsonOpt = False) -> None:
        """Delete one memory."""
        with connection(ctx).client() as ww:
            kind.resource(ww).delete(memory_id)
        emit({"deleted": memory_id}, as_json, lambda _: f"deleted {memory_id}")

    @group.command("recall")
    def recall(
        ctx: typer.Context,
        query: Annotated[str, typer.Argument(help="What to look for.")],
        limit: Limit = 10,
        as_json: JsonOpt = False,
    ) -> None:
        """The memories of this kind that best match QUERY."""
        reply(
            ctx,
            as_json,
            lambda ww: kind.resource(ww).recall(query, limit=limit),
            lambda r: rows_table(r.hits, HIT_COLUMNS, title=str(r.recall_id)),
        )

    return group


def _json_option(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"{option}: not JSON ({exc})", Exit.USAGE)


def store(
    ctx: typer.Context,
    content: Annotated[str, typer.Argument(help="What happened, as text; - reads stdin.")],
    speaker: Annotated[str | None, typer.Option(help="Who said or did it.")] = None,
    outcome: Annotated[str | None, typer.Option(help="success, failure or neutral.")] = None,
    importance: Annotated[float | None, typer.Option(help="0 to 1.")] = None,
    external_id: Annotated[str | None, typer.Option(help="Your own id for it.")] = None,
    metadata: Annotated[str | None, typer.Option(help="A JSON object.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Store an episode."""
    if content == "-":
        content = sys.stdin.read()
    given = {
        "speaker": speaker,
        "outcome": outcome,
        "importance": importance,
        "external_id": external_id,
        "metadata": _json_option(metadata, "--metadata"),
    }
    with connection(ctx).client() as ww:
        stored = ww.episodes.create(
            **{k: v for k, v in given.items() if v is not None}, content=content
        )
    emit(stored, as_json, lambda e: f"stored {e.id}")


def recall(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    kind: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="episode, entity or skill (repeatable); default all."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Most hits per type.")] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Do not record the retrieval (learn=false).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recall every kind of memory for QUERY, ranked together."""
    options: dict[str, Any] = {"learn": not read_only}
    if kind:
        options["memory_types"] = kind
    if limit is not None:
        options["limits"] = {t: limit for t in (kind or ("episode", "entity", "skill"))}
    reply(
        ctx,
        as_json,
        lambda ww: ww.recall(query, **options),
        lambda r: rows_table(r.hits, HIT_COLUMNS, title=f"recall {r.recall_id}"),
    )


def feedback(
    ctx: typer.Context,
    recall_id: Annotated[str, typer.Argument(help="The recall_id a recall answered.")],
    reward: Annotated[float, typer.Option(help="-1 (misleading) to 1 (useful).")],
    as_json: JsonOpt = False,
) -> None:
    """Reward what a recall returned."""
    reply(
        ctx,
        as_json,
        lambda ww: ww.feedback(recall_id, reward=reward),
        lambda a: f"{len(a.changes)} memories changed",
    )


def consolidate(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, change nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Consolidate the session: cluster episodes into entities."""
    reply(
        ctx,
        as_json,
        lambda ww: ww.consolidate(dry_run=dry_run),
        lambda r: record_table(r.model_dump(exclude={"entities"})),
    )


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """The memory commands on ``app``; ``groups`` are the kinds' groups to add to."""
    for command in (store, recall, feedback, consolidate):
        app.command()(command)
    for kind in KINDS:
        app.add_typer(groups[kind.name], name=kind.name)
