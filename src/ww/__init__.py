"""World Weaver: long-term memory for AI agents.

``from ww import WorldWeaver, AsyncWorldWeaver`` gives the SDK (``ww.sdk``); it is loaded
on first use, so ``import ww`` stays as light as this file."""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AsyncWorldWeaver", "WorldWeaver", "__version__"]

if TYPE_CHECKING:
    from ww.sdk import AsyncWorldWeaver, WorldWeaver


def __getattr__(name: str) -> Any:
    if name in ("WorldWeaver", "AsyncWorldWeaver"):
        from ww import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'ww' has no attribute {name!r}")
