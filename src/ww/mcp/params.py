"""Tool parameters taken from the API's own request models, so that a tool's input schema
is the route's body schema and cannot drift from it.

``takes(Model, ...)`` gives a tool function the signature ``(field=..., ..., extra=...)``:
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

__all__ = ["SESSION_PARAM", "body", "fields", "signature_of", "takes"]

M = TypeVar("M", bound=BaseModel)

F = TypeVar("F", bound=Callable[..., Any])

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
    """One keyword-only parameter per field of ``model``. The
    field's ``FieldInfo`` travels in the annotation (type, constraints, description) and
    its default is the parameter's."""
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=_annotation(info),
            **(
                {}
                if info.is_required()
                else {"default": info.get_default(call_default_factory=True)}
            ),
        )
        for name, info in model.model_fields.items()
    ]


def _default(info: FieldInfo) -> Any:
    if info.is_required():
        return inspect.Parameter.empty
    return info.get_default(call_default_factory=True)


def _annotation(info: FieldInfo) -> Any:
    """The field's type with its constraints and description; its default goes on the
    parameter (a ``FieldInfo`` may not carry both a default and a default factory)."""
    described = Field(description=info.description, examples=info.examples)
    return Annotated[(info.annotation, *info.metadata, described)]


def takes(
    *groups: type[BaseModel] | inspect.Parameter | list[inspect.Parameter],
) -> Callable[[F], F]:
    """Give the decorated function, in order, the parameters of each group: a model's
    fields, one parameter, or a list of them (``signature_of``)."""
    params: list[inspect.Parameter] = []
    for group in groups:
        if isinstance(group, inspect.Parameter):
            params.append(group)
        elif isinstance(group, list):
            params.extend(group)
        else:
            params.extend(fields(group))

    def decorate(func: F) -> F:
        # Resolved here: FastMCP reads a __signature__ as it is, string annotations and all.
        answer = inspect.signature(func, eval_str=True).return_annotation
        func.__signature__ = inspect.Signature(params, return_annotation=answer)  # type: ignore[attr-defined]
        func.__annotations__ = {**{p.name: p.annotation for p in params}, "return": answer}
        return func

    return decorate


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
