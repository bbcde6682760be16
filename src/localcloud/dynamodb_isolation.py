"""Serializable DynamoDB transactions in moto, as DynamoDB gives them.

moto's ``TransactWriteItems`` copies every table it touches before it starts and, when one of its
conditions fails, puts the copy back: any write another request made to that table in between is
undone. DynamoDB isolates transactions from every other write (serializable isolation, "DynamoDB
transactions" in the developer guide). :func:`isolate_transactions` holds one lock across moto's
DynamoDB writes, in this process (where the local cloud runs moto's server), so a transaction
that fails can only put back what it read. Applied once; it changes no answer moto gives.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

__all__ = ["isolate_transactions"]

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_MARK = "_localcloud_isolated"
_lock = threading.RLock()


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def write(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    setattr(write, _MARK, True)
    return write


def isolate_transactions() -> None:
    with _lock:
        for name in _WRITES:
            method = getattr(DynamoDBBackend, name)
            if not getattr(method, _MARK, False):
                setattr(DynamoDBBackend, name, _serialized(method))
