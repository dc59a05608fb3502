"""What a log line, an error or a progress message may show of a URL: scheme, host and port,
never the credentials, path or query. Dependency-free, for the server and the clients."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["url_address"]


def url_address(url: str) -> str:
    """``url`` without credentials, path or query: what a log line may show of it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
