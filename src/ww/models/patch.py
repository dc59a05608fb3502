"""The base of every partial update: only the fields given change.

A field that may be left out is not always one that may be nulled: each update names the
fields a null would erase rather than clear, and a null for one of them is refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["Patch"]


class Patch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    not_nullable: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulled = [k for k in cls.not_nullable if k in data and data[k] is None]
            if nulled:
                raise ValueError(f"{', '.join(nulled)} cannot be null")
        return data
