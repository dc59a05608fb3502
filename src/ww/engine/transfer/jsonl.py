"""Export and import of memories as versioned JSON Lines (``docs/export-format.md``).

Storage-agnostic: everything goes through the ports, so an export of one backend imports
into any other. The kinds of record and how each is read and written live in
``kinds.py``; this module owns the file format, validation and batching.

Import reads its input twice: a first pass validates every line (and resolves references
against the store) without writing anything, the second writes in batches through the
engine's write protocol. A bad file is therefore refused whole, and the input is never held
in memory at once (the caller passes something that can be read twice, such as a file).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ww.config import SESSION_ID_PATTERN
from ww.engine.transfer.kinds import (
    KINDS,
    PAGE,
    ExportItem,
    ImportItem,
    Kind,
    Memories,
    RecordConflictError,
)
from ww.models import UtcDatetime
from ww.models.api import ImportReport, ReembedMode
from ww.storage.ports import IdConflictError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MEDIA_TYPE",
    "ExportHeader",
    "ExportTrailer",
    "ImportConflictError",
    "ImportReport",
    "InvalidImportError",
    "ReembedMode",
    "Transfer",
]

FORMAT = "ww-export"
FORMAT_VERSION = 1
MEDIA_TYPE = "application/x-ndjson"

_KINDS: dict[str, Kind] = {k.name: k for k in KINDS}
_TIMES = TypeAdapter(list[datetime])
# Characters that some line splitters (str.splitlines) treat as line ends; inside JSON they
# can only occur in strings, where an escape means the same.
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


class InvalidImportError(ValueError):
    """The input is not a valid export; nothing was written. ``line`` is 1-based."""

    def __init__(self, line: int | None, code: str, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.code = code


class ImportConflictError(ValueError):
    """A valid record conflicts with what the store holds (an id of another session, or a
    relation duplicating another). Batches before it are written; re-running is safe."""

    def __init__(self, line: str, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class ExportHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["header"] = "header"
    format: str
    version: int
    embedding_model: str = Field(min_length=1)
    embedding_dimension: int = Field(ge=1)
    exported_at: UtcDatetime
    session_id: str | None = None
    vectors: bool = True


class ExportTrailer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["trailer"] = "trailer"
    counts: dict[str, int]


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    record: dict[str, Any]
    vector: list[float] | None = None
    access_times: list[UtcDatetime] | None = None


@dataclass
class _Plan:
    header: ExportHeader
    reembed_all: bool
    model_differs: bool
    counts: Counter[str] = field(default_factory=Counter)
    # (kind, session, key, line) of references to records not earlier in the file.
    unresolved: list[tuple[str, str, str, int]] = field(default_factory=list)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{prefix}{loc}: {err.get('msg', 'invalid')}" if loc else err["msg"])
    return "; ".join(parts)


def _parse(raw: bytes, n: int) -> dict[str, Any]:
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidImportError(n, "malformed_line", f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidImportError(n, "malformed_line", "a line must be a JSON object")
    return obj


def _header(obj: dict[str, Any], n: int) -> ExportHeader:
    if obj.get("kind") != "header":
        raise InvalidImportError(n, "invalid_export", "the first line must be the header")
    if obj.get("format") != FORMAT:
        raise InvalidImportError(n, "unsupported_export", f"format must be {FORMAT!r}")
    if obj.get("version") != FORMAT_VERSION:
        raise InvalidImportError(
            n,
            "unsupported_export",
            f"export format version {obj.get('version')!r} is not supported "
            f"(this server reads version {FORMAT_VERSION})",
        )
    try:
        return ExportHeader.model_validate(obj)
    except ValidationError as exc:
        raise InvalidImportError(n, "invalid_line", _describe(exc)) from None


def _read_line(
    obj: dict[str, Any], n: int, header: ExportHeader, mode: ReembedMode
) -> tuple[Kind, str, ImportItem]:
    """Validate one record line completely and turn it into what a kind writes."""
    name = obj.get("kind")
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        known = ", ".join(_KINDS)
        raise InvalidImportError(n, "invalid_line", f"unknown kind {name!r} (known: {known})")
    try:
        line = _Line.model_validate(obj)
        record = kind.model.model_validate(line.record)
    except ValidationError as exc:
        raise InvalidImportError(n, "invalid_line", f"{name}: {_describe(exc)}") from None
    owner = kind.record_session(record)
    if owner is not None and owner != line.session_id:
        raise InvalidImportError(
            n, "invalid_line", f"record of session {owner!r} on a line of {line.session_id!r}"
        )
    problem = kind.check(record)
    if problem is not None:
        raise InvalidImportError(n, "invalid_line", f"{name}: {problem}")
    if line.access_times is not None and not kind.has_access_times:
        raise InvalidImportError(n, "invalid_line", f"a {name} line has no access_times")
    vector = None
    if line.vector is not None:
        if not kind.has_vector:
            raise InvalidImportError(n, "invalid_line", f"a {name} line has no vector")
        if len(line.vector) != header.embedding_dimension:
            raise InvalidImportError(
                n,
                "invalid_line",
                f"vector has {len(line.vector)} dimensions, the header says "
                f"{header.embedding_dimension}",
            )
        if not all(map(math.isfinite, line.vector)) or not any(line.vector):
            raise InvalidImportError(n, "invalid_line", "vector must be finite and non-zero")
        vector = np.asarray(line.vector, dtype=np.float32)
    elif kind.has_vector and mode is ReembedMode.NEVER:
        raise InvalidImportError(
            n, "invalid_line", f"reembed=never needs a vector on every {name} line"
        )
    item = ImportItem(n, record, vector, line.access_times)
    return kind, line.session_id, item


def _records(
    lines: Iterable[bytes],
) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, raw in enumerate(lines, 1):
        if raw.strip():
            yield n, _parse(raw, n)


def _validate(lines: Iterable[bytes], model: str, dim: int, mode: ReembedMode) -> _Plan:
    """Pass 1: every line, ordering, duplicates, references, the trailer. Writes nothing."""
    plan: _Plan | None = None
    trailer: ExportTrailer | None = None
    trailer_line = 0
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    sessions: set[str] = set()
    for n, obj in _records(lines):
        if plan is None:
            header = _header(obj, n)
            differs = header.embedding_model != model or header.embedding_dimension != dim
            if differs and mode is ReembedMode.NEVER:
                raise InvalidImportError(
                    n,
                    "embedding_mismatch",
                    f"reembed=never but the export was made with {header.embedding_model!r} "
                    f"({header.embedding_dimension} dimensions) and this server embeds with "
                    f"{model!r} ({dim})",
                )
            plan = _Plan(
                header, reembed_all=differs or mode is ReembedMode.ALWAYS, model_differs=differs
            )
            continue
        if trailer is not None:
            raise InvalidImportError(n, "invalid_export", "nothing may follow the trailer")
        if obj.get("kind") == "trailer":
            try:
                trailer, trailer_line = ExportTrailer.model_validate(obj), n
            except ValidationError as exc:
                raise InvalidImportError(n, "invalid_line", _describe(exc)) from None
            continue
        if obj.get("kind") == "header":
            raise InvalidImportError(n, "invalid_export", "a second header")
        kind, session, item = _read_line(obj, n, plan.header, mode)
        key = kind.key(item.record)
        if kind.name == "session":
            sessions.add(session)
        elif session not in sessions:
            raise InvalidImportError(
                n, "invalid_line", f"session {session!r} has no session line before this one"
            )
        if (session, key) in seen[kind.name]:
            raise InvalidImportError(n, "invalid_line", f"{kind.name} {key} appears twice")
        seen[kind.name].add((session, key))
        for ref_kind, ref_key in kind.refs(item.record):
            if (session, ref_key) not in seen[ref_kind]:
                plan.unresolved.append((ref_kind, session, ref_key, n))
        plan.counts[kind.name] += 1
    if plan is None:
        raise InvalidImportError(None, "invalid_export", "empty input: no header")
    if trailer is None:
        raise InvalidImportError(
            None, "truncated_export", "no trailer: the export is incomplete (truncated?)"
        )
    for name in sorted(set(trailer.counts) | set(plan.counts)):
        if trailer.counts.get(name, 0) != plan.counts.get(name, 0):
            raise InvalidImportError(
                trailer_line,
                "truncated_export",
                f"the trailer counts {trailer.counts.get(name, 0)} {name} lines, the file "
                f"holds {plan.counts.get(name, 0)}",
            )
    return plan


def _batches(
    lines: Iterable[bytes], header: ExportHeader, mode: ReembedMode
) -> Iterator[tuple[Kind, str, list[ImportItem]]]:
    """Pass 2: runs of consecutive lines of one kind and session, at most ``PAGE`` long."""
    run: list[ImportItem] = []
    current: tuple[Kind, str] | None = None
    for n, obj in _records(lines):
        if obj.get("kind") in ("header", "trailer"):
            continue
        kind, session, item = _read_line(obj, n, header, mode)
        if current != (kind, session) or len(run) >= PAGE:
            if current is not None and run:
                yield current[0], current[1], run
            current, run = (kind, session), []
        run.append(item)
    if current is not None and run:
        yield current[0], current[1], run


def _dumps(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _LINE_BREAKS.items():
        if char in text:
            text = text.replace(char, escape)
    return text


def _encode(kind: Kind, session_id: str, item: ExportItem) -> bytes:
    obj: dict[str, Any] = {
        "kind": kind.name,
        "session_id": session_id,
        "record": item.record.model_dump(mode="json", exclude=set(kind.exclude)),
    }
    if item.access_times is not None:
        obj["access_times"] = _TIMES.dump_python(item.access_times, mode="json")
    text = _dumps(obj)
    if item.vector is not None:
        # str() of a float32 is its shortest decimal that reads back to the same float32:
        # exact, and about half the size of the float64 text json.dumps would write.
        text = text[:-1] + ',"vector":[' + ",".join(map(str, item.vector)) + "]}"
    return (text + "\n").encode()


class Transfer:
    """Export and import over one set of memories (``Memories``)."""

    def __init__(self, mem: Memories) -> None:
        self.mem = mem

    async def has_session(self, session_id: str) -> bool:
        return await self.mem.engine.records.session_stats(session_id) is not None

    async def check(self, *, vectors: bool = True) -> None:
        """Raise ``StoreUnavailableError`` if a store the export reads is down, so the caller
        can answer 503 before streaming starts (a failure midway only truncates the stream)."""
        await self.mem.engine.records.check()
        if vectors:
            for index in (
                self.mem.engine.vectors,
                self.mem.semantic.vectors,
                self.mem.procedural.vectors,
            ):
                await index.check()

    async def export(
        self, session_id: str | None = None, *, vectors: bool = True
    ) -> AsyncIterator[bytes]:
        """The export as chunks of whole lines, read page by page from the stores.

        Not a snapshot: records written while it runs may or may not be included. If a
        store fails midway the stream ends without its trailer, which import refuses.
        """
        embedder = self.mem.engine.embedder
        header = ExportHeader(
            format=FORMAT,
            version=FORMAT_VERSION,
            embedding_model=embedder.model_id,
            embedding_dimension=embedder.dimension,
            exported_at=self.mem.engine.clock(),
            session_id=session_id,
            vectors=vectors,
        )
        yield (_dumps(header.model_dump(mode="json")) + "\n").encode()
        if session_id is not None:
            sessions = [session_id]
        else:
            sessions = sorted(await self.mem.engine.records.list_sessions())
        counts = {k.name: 0 for k in KINDS}
        for session in sessions:
            for kind in KINDS:
                async for page in kind.pages(self.mem, session, vectors):
                    if page:
                        counts[kind.name] += len(page)
                        yield b"".join(_encode(kind, session, item) for item in page)
        trailer = ExportTrailer(counts=counts)
        yield (_dumps(trailer.model_dump(mode="json")) + "\n").encode()

    async def import_lines(
        self,
        open_lines: Callable[[], Iterable[bytes]],
        reembed: ReembedMode = ReembedMode.AUTO,
    ) -> ImportReport:
        """Import an export; ``open_lines`` returns a fresh iterator of its lines each call
        (it is read twice). Raises ``InvalidImportError`` before writing anything when the
        input is invalid, ``ImportConflictError`` when a record conflicts with the store."""
        embedder = self.mem.engine.embedder
        model, dim = embedder.model_id, embedder.dimension
        # Parsing is CPU work: off the event loop.
        plan = await asyncio.to_thread(_validate, open_lines(), model, dim, reembed)
        await self._resolve(plan)
        batches = _batches(open_lines(), plan.header, reembed)
        written: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        reembedded = pending = 0
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            kind, session, items = batch
            if kind.model_bound and plan.model_differs:
                skipped[kind.name] += len(items)
                continue
            reembedded += await self._fill_vectors(kind, items, plan.reembed_all)
            try:
                pending += await kind.write(self.mem, session, items)
            except RecordConflictError as exc:
                raise ImportConflictError(str(exc.line), str(exc)) from exc
            except IdConflictError as exc:
                lines = f"{items[0].line}-{items[-1].line}"
                raise ImportConflictError(
                    lines, f"a {kind.name} id is already used by another session ({exc})"
                ) from exc
            written[kind.name] += len(items)
            # Keeps Maintenance from building the HNSW index (which holds the GIL) mid-import.
            self.mem.engine.note_write()
        return ImportReport(
            format_version=plan.header.version,
            embedding_model=plan.header.embedding_model,
            counts={k.name: written[k.name] for k in KINDS},
            reembedded=reembedded,
            pending=pending,
            skipped={k: n for k, n in skipped.items() if n},
        )

    async def _resolve(self, plan: _Plan) -> None:
        """References not earlier in the file must name records already in the store."""
        wanted: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for kind, session, key, n in plan.unresolved:
            wanted[(kind, session)].setdefault(key, n)
        for (kind, session), keys in wanted.items():
            found = await _KINDS[kind].existing(self.mem, session, list(keys))
            missing = [(n, k) for k, n in keys.items() if k not in found]
            if missing:
                n, key = min(missing)
                raise InvalidImportError(
                    n,
                    "invalid_line",
                    f"refers to {kind} {key}, which is neither earlier in the file nor in "
                    f"session {session!r}",
                )

    async def _fill_vectors(self, kind: Kind, items: list[ImportItem], reembed_all: bool) -> int:
        if not kind.has_vector:
            return 0
        todo = [i for i in items if reembed_all or i.vector is None]
        if todo:
            vectors = await self.mem.engine.embedder.embed_many(
                [kind.embed_text(self.mem, i.record) for i in todo]
            )
            for i, item in enumerate(todo):
                item.vector = vectors[i]
        return len(todo)
