"""What entities and skills have beyond the kinds' shared commands: creating them,
relations between entities, and a skill's how-to and executions."""

from __future__ import annotations

from typing import Annotated

import typer

from ww.cli._shared import JsonOpt, connection, emit, record_table, reply, rows_table

__all__ = ["add_entity_commands", "add_skill_commands"]

EntityId = Annotated[str, typer.Argument(help="The entity's id.")]


def add_entity_commands(group: typer.Typer) -> None:
    @group.command("create")
    def create(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="What it is called.")],
        entity_type: Annotated[
            str, typer.Option("--type", help="PERSON, LOCATION, CONCEPT, ... (docs/api.md).")
        ] = "CONCEPT",
        summary: Annotated[str, typer.Option(help="What the agent knows of it.")] = "",
        as_json: JsonOpt = False,
    ) -> None:
        """Create an entity."""
        reply(
            ctx,
            as_json,
            lambda ww: ww.entities.create(name=name, entity_type=entity_type, summary=summary),
            lambda e: f"created {e.id}",
        )

    @group.command("relate")
    def relate(
        ctx: typer.Context,
        source: EntityId,
        target: Annotated[str, typer.Argument(help="The entity it relates to.")],
        relation_type: Annotated[str, typer.Option("--type", help="e.g. PART_OF.")] = "RELATED_TO",
        weight: Annotated[float | None, typer.Option(help="0 to 1.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Relate SOURCE to TARGET."""
        fields = {"relation_type": relation_type}
        with connection(ctx).client() as ww:
            made = ww.entities.relate(
                source, target, **fields, **({"weight": weight} if weight is not None else {})
            )
        emit(made, as_json, lambda r: f"related {r.id}")

    @group.command("relations")
    def relations(ctx: typer.Context, entity_id: EntityId, as_json: JsonOpt = False) -> None:
        """The relations of an entity."""
        with connection(ctx).client() as ww:
            found = ww.entities.relations(entity_id)
        columns = {
            "id": lambda r: r.id,
            "from": lambda r: r.source_id,
            "type": lambda r: r.relation_type,
            "to": lambda r: r.target_id,
            "weight": lambda r: r.weight,
        }
        emit(found, as_json, lambda f: rows_table(f.items, columns, title=entity_id))

    @group.command("unrelate")
    def unrelate(
        ctx: typer.Context,
        entity_id: EntityId,
        relation_id: Annotated[str, typer.Argument(help="The relation's id.")],
        as_json: JsonOpt = False,
    ) -> None:
        """Delete a relation of an entity."""
        with connection(ctx).client() as ww:
            ww.entities.unrelate(entity_id, relation_id)
        emit({"deleted": relation_id}, as_json, lambda _: f"deleted {relation_id}")


def add_skill_commands(group: typer.Typer) -> None:
    @group.command("create")
    def create(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="The skill's name.")],
        task: Annotated[str, typer.Option(help="The task it does.")],
        step: Annotated[list[str], typer.Option(help="One step, in order (repeatable).")],
        domain: Annotated[str | None, typer.Option(help="Its domain.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Create a skill from its steps."""
        steps = [{"order": i, "action": action} for i, action in enumerate(step, start=1)]
        extra = {"domain": domain} if domain else {}
        reply(
            ctx,
            as_json,
            lambda ww: ww.skills.create(name=name, task=task, steps=steps, **extra),
            lambda s: f"created {s.id}",
        )

    @group.command("how-to")
    def how_to(
        ctx: typer.Context,
        task: Annotated[str, typer.Argument(help="What needs doing.")],
        domain: Annotated[str | None, typer.Option(help="Only skills of this domain.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """The best live skill for TASK, with its steps."""
        scope = {"domain": domain} if domain else {}
        reply(ctx, as_json, lambda ww: ww.skills.how_to(task, **scope), record_table)

    @group.command("execute")
    def execute(
        ctx: typer.Context,
        skill_id: Annotated[str, typer.Argument(help="The skill's id.")],
        success: Annotated[bool, typer.Option("--success/--failure", help="How it went.")],
        duration_ms: Annotated[int | None, typer.Option(help="How long it took.")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Record one run of a skill."""
        extra = {"duration_ms": duration_ms} if duration_ms is not None else {}
        reply(
            ctx,
            as_json,
            lambda ww: ww.skills.execute(skill_id, success=success, **extra),
            record_table,
        )
