"""The Python SDK: ``WorldWeaver`` (blocking) and ``AsyncWorldWeaver`` (asyncio) over
``httpx``, against a server or an engine in this process (``embedded``). ``docs/sdk.md``.

Importing it needs only ``httpx`` and ``pydantic``: the models come from ``ww.models``,
which imports neither FastAPI nor the engine."""

from ww.sdk import errors
from ww.sdk._core import Retries
from ww.sdk.client import DEFAULT_URL, AsyncWorldWeaver, Options, WorldWeaver
from ww.sdk.errors import *  # noqa: F403 (exactly errors.__all__)

__all__ = ["DEFAULT_URL", "AsyncWorldWeaver", "Options", "Retries", "WorldWeaver"]
__all__ += errors.__all__
