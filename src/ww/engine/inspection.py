"""What the explorer shows of one episode: its record, what recall learned about it and its
links, read without changing any of it (no access is recorded)."""

from __future__ import annotations

from uuid import UUID

from ww.engine.consolidation import Consolidator
from ww.engine.memory import MemoryEngine
from ww.models import EpisodeFilter
from ww.models.api import EpisodeState, HebbianLink, MemoryLinkOut
from ww.storage.ports.consolidation import MemoryLink
from ww.storage.ports.learning import MemoryState

__all__ = ["MAX_EDGES", "episode_state", "links_out"]

# The strongest co-retrieval edges shown; a busy memory may have hundreds.
MAX_EDGES = 25
_ANY = EpisodeFilter(include_archived=True)


async def episode_state(
    engine: MemoryEngine, consolidator: Consolidator, session_id: str, episode_id: UUID
) -> EpisodeState | None:
    """The episode's state, or None when the session holds no such episode."""
    episode = await engine.get_episode(session_id, episode_id)
    if episode is None:
        return None
    rows = await engine.records.candidate_rows(session_id, [episode_id], _ANY)
    near = await engine.records.neighbours(session_id, list(rows.values())) if rows else {}
    near_ids = list(near.get(episode_id, ()))
    found = await engine.records.get_episodes(session_id, near_ids)
    neighbours = sorted(found.values(), key=lambda e: (e.timestamp, str(e.id)))
    learned = (await engine.learning.memory_states(session_id, [episode_id])).get(
        episode_id, MemoryState()
    )
    edges = await engine.learning.edges_of(session_id, episode_id, MAX_EDGES)
    links = await consolidator.links(session_id, episode_id)
    return EpisodeState(
        episode=episode,
        retrievability=engine.fsrs.retrievability(episode.fsrs, engine.clock()),
        value=learned.value,
        rewards=learned.rewards,
        access_times=list(learned.access_times),
        neighbours=neighbours,
        hebbian=[
            HebbianLink(
                memory_id=e.b if e.a == episode_id else e.a,
                weight=e.weight,
                last_strengthened=e.last_strengthened,
            )
            for e in edges
        ],
        consolidation=links_out(links),
    )


def links_out(links: list[MemoryLink]) -> list[MemoryLinkOut]:
    return [
        MemoryLinkOut(
            source_id=k.source_id,
            target_id=k.target_id,
            link_type=k.link_type,
            created_at=k.created_at,
        )
        for k in links
    ]
