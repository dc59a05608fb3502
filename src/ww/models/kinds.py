"""What the recall types of every kind of memory beside episodes share: the request's
query, limit and ``learn``, a hit's identity and score, and the result's envelope."""

from __future__ import annotations

from typing import Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ww.models import MemoryType

__all__ = ["KindHit", "KindRecallRequest", "KindRecallResult"]

H = TypeVar("H")


class KindRecallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    limit: int = Field(10, ge=1, le=100)
    learn: bool = Field(
        True,
        description="Record the retrieval and log the recall for feedback; false makes "
        "recall read-only.",
    )


class KindHit(BaseModel):
    memory_type: MemoryType
    id: UUID
    score: float


class KindRecallResult(BaseModel, Generic[H]):
    recall_id: UUID = Field(description="Names this recall in `POST /api/v1/feedback`.")
    query: str
    hits: list[H]
    degraded: bool = False
