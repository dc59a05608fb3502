"""What a vector index keeps beside each vector so that filters run inside the index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ww.models import Episode, EpisodeFilter, MemoryType

__all__ = [
    "MatchTerm",
    "RangeTerm",
    "episode_payload",
    "filter_terms",
    "from_micros",
    "metadata_tag",
    "to_micros",
]


def to_micros(value: datetime) -> int:
    """Exact integer microseconds since the epoch (floats would round microseconds)."""
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    seconds, micros = divmod(value, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micros)


def metadata_tag(value: str | int | bool) -> str:
    """Type-tagged keyword for exact metadata matching.

    Qdrant Edge 0.9 reads a Python bool in a match as an integer, so ``True`` and ``1`` would
    collide; tagging keeps ``"1"``, ``1`` and ``True`` distinct, as the record store does.
    """
    if isinstance(value, bool):
        return "b:true" if value else "b:false"
    if isinstance(value, int):
        return f"i:{value}"
    return f"s:{value}"


def episode_payload(episode: Episode) -> dict[str, Any]:
    # Only str/int/bool metadata is filterable; the rest stays in the record store.
    metadata = {
        k: metadata_tag(v) for k, v in episode.metadata.items() if isinstance(v, str | int | bool)
    }
    return {
        "session_id": episode.session_id,
        "memory_type": MemoryType.EPISODE.value,
        "timestamp": to_micros(episode.timestamp),
        "outcome": episode.outcome.value,
        "project": episode.context.project,
        "speaker": episode.speaker,
        "archived": int(episode.archived),
        "metadata": metadata,
    }


@dataclass(frozen=True, slots=True)
class MatchTerm:
    key: str
    value: str | int


@dataclass(frozen=True, slots=True)
class RangeTerm:
    key: str
    gte: float | None
    lt: float | None


def filter_terms(flt: EpisodeFilter) -> list[MatchTerm | RangeTerm]:
    """What ``flt`` requires of a payload, written once for every vector index (each maps
    the terms to its own client's condition types; the session term is theirs to add)."""
    terms: list[MatchTerm | RangeTerm] = []
    if not flt.include_archived:
        terms.append(MatchTerm("archived", 0))
    if flt.time_from is not None or flt.time_to is not None:
        terms.append(
            RangeTerm(
                "timestamp",
                gte=float(to_micros(flt.time_from)) if flt.time_from else None,
                lt=float(to_micros(flt.time_to)) if flt.time_to else None,
            )
        )
    if flt.outcome is not None:
        terms.append(MatchTerm("outcome", flt.outcome.value))
    if flt.project is not None:
        terms.append(MatchTerm("project", flt.project))
    if flt.speaker is not None:
        terms.append(MatchTerm("speaker", flt.speaker))
    terms.extend(MatchTerm(f"metadata.{k}", metadata_tag(v)) for k, v in flt.metadata.items())
    return terms
