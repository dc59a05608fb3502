"""Tool parameters taken from the API's own request models, so that a tool's input schema
is the route's body schema and cannot drift from it.

``signature(Model, ...)`` is a tool function's signature ``(field=..., ..., extra=...)``:
one keyword-only parameter per field of ``Model``, each annotated with the field's own type
and ``FieldInfo`` (constraints, description, default), followed by the tool's own extra
parameters (an id in the path, ``session_id``). FastMCP reads that signature to build the
tool's JSON schema and validate the arguments before the call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

__all__ = ["SESSION_PARAM", "Group", "body", "fields", "signature", "signature_of"]

M = TypeVar("M", bound=BaseModel)


# The optional per-call session every tool takes.
SESSION_PARAM = inspect.Parameter(
    "session_id",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        str | None,
        Field(description="The session to act in; default: the server's configured one."),
    ],
)


def fields(model: type[BaseModel]) -> list[inspect.Parameter]:
    """One keyword-only parameter per field of ``model``, with the field's type,
    constraints, description and default."""
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=_annotation(info),
            default=_default(info),
        )
        for name, info in model.model_fields.items()
    ]


def _default(info: FieldInfo) -> Any:
    """A plain default goes on the parameter; a default factory stays in the annotation
    (``_annotation``), so that the schema leaves it out, as the model's own does."""
    if info.is_required() or info.default_factory is not None:
        return inspect.Parameter.empty
    return info.default


def _annotation(info: FieldInfo) -> Any:
    """The field's type with its constraints, description and default factory. A
    ``FieldInfo`` may not carry both a default and a default factory, so a plain default
    goes on the parameter instead."""
    described = (
        Field(description=info.description, examples=info.examples)
        if info.default_factory is None
        else Field(
            description=info.description,
            examples=info.examples,
            default_factory=info.default_factory,
        )
    )
    return Annotated[(info.annotation, *info.metadata, described)]


Group = type[BaseModel] | inspect.Parameter | list[inspect.Parameter]


def signature(groups: Iterable[Group], answer: Any) -> inspect.Signature:
    """A tool function's signature: in order, the parameters of each group (a model's
    fields, one parameter, or a list of them from ``signature_of``), returning ``answer``
    (the API's answer model, which FastMCP makes the tool's output schema)."""
    params: list[inspect.Parameter] = []
    for group in groups:
        if isinstance(group, inspect.Parameter):
            params.append(group)
        elif isinstance(group, list):
            params.extend(group)
        else:
            params.extend(fields(group))
    return inspect.Signature(params, return_annotation=answer)


def signature_of(
    func: Callable[..., Any], *, skip: Iterable[str] = ("self",)
) -> list[inspect.Parameter]:
    """The keyword parameters of ``func`` (an SDK operation: a list's filters and paging),
    keyword-only, so that a tool takes exactly what the SDK sends and nothing copied."""
    skipped = set(skip)
    return [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(func, eval_str=True).parameters.values()
        if p.name not in skipped and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]


def body(model: type[M], given: Mapping[str, Any]) -> M:
    """``model`` from a tool's arguments (FastMCP passes every parameter, defaults too):
    the fields left at their default are left unset, so the request carries what the
    caller gave, as a direct API call would."""
    chosen = {
        name: value
        for name, value in given.items()
        if name in model.model_fields
        and value != model.model_fields[name].get_default(call_default_factory=True)
    }
    return model.model_validate(chosen)
