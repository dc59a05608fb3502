"""Request and response bodies of the REST API: defined in ``ww.models.api`` (importable
without FastAPI, for the SDK) and named here for the routers."""

from __future__ import annotations

from ww.models.api import (
    MAX_BATCH,
    BatchCreate,
    BatchCreated,
    ControlHealth,
    EpisodeCreateBody,
    EpisodeList,
    EpisodeState,
    HealthReport,
    ImportanceBody,
    OnConflict,
    RecallRequest,
    SessionDeleted,
    SessionList,
)

__all__ = [
    "MAX_BATCH",
    "BatchCreate",
    "BatchCreated",
    "ControlHealth",
    "EpisodeCreateBody",
    "EpisodeList",
    "EpisodeState",
    "HealthReport",
    "ImportanceBody",
    "OnConflict",
    "RecallRequest",
    "SessionDeleted",
    "SessionList",
]
