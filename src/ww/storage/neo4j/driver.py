"""One Neo4j connection as the record store and the Neo4j vector index each hold it.

Driver errors that mean "the database cannot be reached" become
``StoreUnavailableError("neo4j", ...)``, which the API answers with 503. ``retry_time``
bounds how long the driver keeps retrying a failed transaction (its backoff starts at about
a second): enough for one retry on a fresh connection after pooled ones died with a Neo4j
restart, while a client of a database that is down gets its 503 within a few seconds rather
than the driver's default 30.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypedDict, TypeVar, Unpack
from uuid import UUID

from neo4j import AsyncDriver, AsyncGraphDatabase, AsyncManagedTransaction
from neo4j.exceptions import ClientError, ServiceUnavailable, SessionExpired, TransientError

from ww.storage.ports import StoreUnavailableError

__all__ = [
    "COMPONENT",
    "SAME_INDEX_EXISTS",
    "UNAVAILABLE",
    "ConnectionOptions",
    "Neo4jConnection",
    "describe",
    "id_keys",
    "listed",
    "row_maps",
    "tx_all",
    "tx_consume",
    "tx_counted",
    "tx_list",
    "tx_single",
]

T = TypeVar("T")
Work = Callable[[AsyncManagedTransaction], Awaitable[T]]

COMPONENT = "neo4j"

# Errors after which the database, not the request, is at fault. ClientErrors (bad Cypher,
# constraint violations) are bugs or caller errors and stay what they are.
UNAVAILABLE = (ServiceUnavailable, SessionExpired, TransientError, OSError)

SAME_INDEX_EXISTS = "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists"

# Reads of properties that only some nodes carry (what learning writes, a speaker) draw
# "property key does not exist" notifications until some node has one, and the driver logs
# each as a warning naming its query: several lines per recall on a fresh database. The
# other classifications (a hint's missing index, deprecations, performance) stay on; an
# unknown name in the service's own Cypher is left to the tests to find. Named by its string:
# drivers before 6.0 warn on importing the enum (a preview there).
_QUIET: list[Literal["UNRECOGNIZED"]] = ["UNRECOGNIZED"]


class ConnectionOptions(TypedDict, total=False):
    user: str
    password: str | None
    database: str
    pool_size: int
    connect_timeout: float
    retry_time: float


class Neo4jConnection:
    """A driver opened by ``_connect`` and the transactions run on it."""

    _closed_message = "store is closed"

    def __init__(self, uri: str, **options: Unpack[ConnectionOptions]) -> None:
        password = options.get("password")
        self._uri = uri
        self._auth = (options.get("user", "neo4j"), password) if password is not None else None
        self._database = options.get("database", "neo4j")
        self._pool_size = options.get("pool_size", 50)
        self._connect_timeout = options.get("connect_timeout", 5.0)
        self._retry_time = options.get("retry_time", 1.0)
        self._driver: AsyncDriver | None = None

    async def _connect(self, schema: Sequence[str]) -> AsyncDriver:
        """Open the driver and run ``schema`` (``IF NOT EXISTS`` statements: every worker
        runs them); closed again when that fails."""
        driver = self._driver = AsyncGraphDatabase.driver(
            self._uri,
            auth=self._auth,
            max_connection_pool_size=self._pool_size,
            connection_timeout=self._connect_timeout,
            connection_acquisition_timeout=self._connect_timeout + self._retry_time,
            max_transaction_retry_time=self._retry_time,
            notifications_disabled_classifications=_QUIET,
        )
        try:
            for statement in schema:
                await driver.execute_query(statement, database_=self._database)
        except UNAVAILABLE as exc:
            await self.close()
            raise StoreUnavailableError(COMPONENT, describe(exc)) from exc
        except BaseException:
            await self.close()
            raise
        return driver

    async def _create_index(self, create: str, params: dict[str, Any]) -> None:
        """Run ``create`` (a ``CREATE … INDEX … IF NOT EXISTS``) on its own.

        Schema changes cannot share a transaction with data writes. IF NOT EXISTS covers an
        index created earlier, but of creations that run at the same moment (several workers
        meeting a new session) Neo4j fails all but one with EquivalentSchemaRuleAlreadyExists:
        the index exists then, which is all the caller wanted.
        """
        try:
            await self._write(tx_consume(create, params))
        except ClientError as exc:
            if exc.code != SAME_INDEX_EXISTS:
                raise

    async def close(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()

    def _require(self) -> AsyncDriver:
        if self._driver is None:
            raise StoreUnavailableError(COMPONENT, self._closed_message)
        return self._driver

    async def _tx(self, write: bool, work: Work[T]) -> T:
        driver = self._require()
        try:
            async with driver.session(database=self._database) as session:
                if write:
                    return await session.execute_write(work)
                return await session.execute_read(work)
        except UNAVAILABLE as exc:
            raise StoreUnavailableError(COMPONENT, describe(exc)) from exc

    async def _read(self, work: Work[T]) -> T:
        return await self._tx(False, work)

    async def _write(self, work: Work[T]) -> T:
        return await self._tx(True, work)


def id_keys(ids: Sequence[UUID]) -> list[str]:
    """``ids`` as the distinct strings the nodes carry, in first-seen order."""
    return [str(i) for i in dict.fromkeys(ids)]


def describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def tx_all(query: str, params: dict[str, Any]) -> Work[list[dict[str, Any]]]:
    async def work(tx: AsyncManagedTransaction) -> list[dict[str, Any]]:
        result = await tx.run(query, params)
        return [record.data() async for record in result]

    return work


def row_maps(**columns: str) -> str:
    """An aggregation of the rows into one list of maps of ``columns`` (name: expression),
    in the order the rows arrive."""
    fields = ", ".join(f"{name}: {expr}" for name, expr in columns.items())
    return f"collect({{{fields}}})"


def listed(**columns: str) -> str:
    """The ``RETURN`` of a query read with ``tx_list``: its rows as ``row_maps``."""
    return f"RETURN {row_maps(**columns)} AS rows"


def tx_list(query: str, params: dict[str, Any]) -> Work[list[dict[str, Any]]]:
    """The rows of ``query``, which returns them as one list (its ``RETURN`` is ``listed``).

    The async driver awaits every record's bytes on its own (a chunk header, then the chunk,
    each a task while the server asks for a read timeout): about 50 µs a record, so 5 ms of
    a recall's 100 candidate rows went to reading them. One record holding a list of them
    is read in a few awaits.
    """

    async def work(tx: AsyncManagedTransaction) -> list[dict[str, Any]]:
        result = await tx.run(query, params)
        record = await result.single(strict=True)
        return list(record["rows"])

    return work


def tx_single(query: str, params: dict[str, Any]) -> Work[dict[str, Any]]:
    async def work(tx: AsyncManagedTransaction) -> dict[str, Any]:
        result = await tx.run(query, params)
        return (await result.single(strict=True)).data()

    return work


def tx_counted(query: str, params: dict[str, Any]) -> Work[bool]:
    """Whether ``query``, which returns one ``n``, counted anything (a match it changed)."""

    async def work(tx: AsyncManagedTransaction) -> bool:
        rows = await tx_all(query, params)(tx)
        return bool(rows and rows[0]["n"])

    return work


def tx_consume(query: str, params: dict[str, Any]) -> Work[None]:
    async def work(tx: AsyncManagedTransaction) -> None:
        result = await tx.run(query, params)
        await result.consume()

    return work
