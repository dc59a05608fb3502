"""``ww export`` and ``ww import``: the admin transfer of memories as JSON Lines
(docs/export-format.md), with a progress bar on stderr (size so far, rate) so that stdout
keeps only the answer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ww.cli._shared import Exit, JsonOpt, connection, emit, err, fail, record_table

__all__ = ["export", "import_"]

_CHUNK = 64 * 1024


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _trailer(path: Path) -> dict[str, Any]:
    """The counts of an export's last line (its trailer), read from the end of the file."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - _CHUNK))
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        line = json.loads(last)
    except ValueError:
        line = None
    if not isinstance(line, dict) or line.get("kind") != "trailer":
        fail(f"{path}: the export ended without its trailer (incomplete)", Exit.FAILED)
    counts: dict[str, Any] = line.get("counts", {})
    return counts


def export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Where to write the export (JSON Lines).")],
    session: Annotated[
        str | None, typer.Option("--only-session", help="Export only this session.")
    ] = None,
    vectors: Annotated[
        bool, typer.Option("--vectors/--no-vectors", help="Include each memory's vector.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Stream every session (or one) to FILE. Admin credentials."""
    # Written beside the target and renamed at the end: a broken stream leaves no
    # half file under the name a restore would use.
    partial = file.with_name(file.name + ".partial")
    size = 0
    params = {"session_id": session, "vectors": vectors}
    try:
        with (
            connection(ctx).client() as ww,
            ww.stream("GET", "/api/v1/admin/export", params=params) as response,
            partial.open("wb") as sink,
            _progress() as progress,
        ):
            task = progress.add_task(f"export → {file.name}", total=None)
            for chunk in response.iter_bytes(_CHUNK):
                sink.write(chunk)
                size += len(chunk)
                progress.update(task, advance=len(chunk))
        counts = _trailer(partial)
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)
    report = {"file": str(file), "bytes": size, "counts": counts}
    emit(report, as_json, lambda r: record_table(r, title="export"))


class _Upload:
    """A file's bytes as chunks that advance a progress bar; iterable again, so a retried
    request sends it whole again (and the bar starts over)."""

    def __init__(self, data: bytes, progress: Progress, task: TaskID) -> None:
        self.data, self.progress, self.task = data, progress, task

    def __iter__(self) -> Iterator[bytes]:
        self.progress.reset(self.task, total=len(self.data))
        for start in range(0, len(self.data), _CHUNK):
            chunk = self.data[start : start + _CHUNK]
            self.progress.update(self.task, advance=len(chunk))
            yield chunk


def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="An export (JSON Lines).")
    ],
    reembed: Annotated[
        str, typer.Option(help="auto, always or never (docs/export-format.md).")
    ] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Upsert an export from FILE: importing it twice leaves the same state. Admin
    credentials."""
    data = file.read_bytes()
    with connection(ctx).client() as ww, _progress() as progress:
        task = progress.add_task(f"import ← {file.name}", total=len(data))
        report = ww.admin.import_(_Upload(data, progress, task), reembed=reembed)
    emit(report, as_json, lambda r: record_table(r, title="import"))
