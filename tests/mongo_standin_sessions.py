"""Sessions and transactions of the MongoDB stand-in (tests/mongo_standin.py): NOT MongoDB.

What the backend's history outbox (storage/mongo/outbox.py) relies on:
``client.start_session()`` as an async context manager, and
``session.with_transaction(callback)`` running ``await callback(session)`` once.
Writes passed ``session=`` inside it are applied at once (the stand-in serves one
event loop: nothing else runs in between unless the callback awaits), journaled,
and their change events held back; when the callback raises, the writes are
undone in reverse order and their events dropped (the transaction aborted),
otherwise the events are published (committed).  A write to a time-series
collection inside a transaction is refused, as MongoDB does (code 263), and so is
a transaction on a standalone stand-in (code 20).  No
isolation, retry of transient errors, or commit failure is modelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo.errors import OperationFailure

T = TypeVar("T")


class StandInSession:
    """What ``client.start_session()`` returns."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.in_transaction = False
        self.journal: list[tuple[Any, str, Any, dict[str, Any] | None]] = []
        self.events: list[tuple[Any, ...]] = []
        #: transactions committed and aborted (tests read them)
        self.committed = 0
        self.aborted = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> StandInSession:
        return self  # recorded calls keep the session itself

    async def __aenter__(self) -> StandInSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def check(self, database: str, collection: str) -> None:
        if self.in_transaction and (database, collection) in self.client.timeseries:
            raise OperationFailure("stand-in: cannot write to a time-series collection in a "
                                   "transaction", code=263)

    async def with_transaction(self, callback: Callable[[StandInSession], Awaitable[T]],
                               **_: Any) -> T:
        if self.client.standalone:
            raise OperationFailure("Transaction numbers are only allowed on a replica set "
                                   "member or mongos", code=20)
        self.client.transactions.append(self)
        self.in_transaction, self.journal, self.events = True, [], []
        try:
            result = await callback(self)
        except BaseException:
            for mock, op, key, before in reversed(self.journal):
                if op == "insert":
                    mock.delete_one({"_id": key})
                elif op == "delete":
                    mock.insert_one(before)
                else:
                    mock.replace_one({"_id": key}, before)
            self.aborted += 1
            raise
        finally:
            self.in_transaction = False
        for event in self.events:
            self.client.changes.append(*event)
        self.committed += 1
        return result


__all__ = ["StandInSession"]
