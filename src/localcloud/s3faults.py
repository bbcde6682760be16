"""S3 write failures for the fault matrix: the next N PutObjects of a key containing a text (a
run id) answer ``500 InternalError`` from moto, which runs in this process. boto3 retries those by
itself, so N must exceed the client's attempts for the caller to see the failure.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3.responses import S3Response

__all__ = ["S3WriteFaults"]

_INTERNAL_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>InternalError</Code>"
    "<Message>We encountered an internal error. Please try again.</Message>"
    "<RequestId>localcloud-fault</RequestId></Error>"
)
_lock = threading.Lock()
_installed: list[S3WriteFaults] = []
_original: dict[str, Any] = {}


def _patched_put_object(response: S3Response) -> Any:
    key = str(response.parse_key_name())
    with _lock:
        faults = list(_installed)
    for fault in faults:
        if fault._take(key):
            return 500, {"content-type": "application/xml"}, _INTERNAL_ERROR
    return _original["put_object"](response)


class S3WriteFaults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining: dict[str, int] = {}
        self.failed: list[str] = []  # keys of the writes that were failed

    def fail_next(self, key_contains: str, count: int) -> None:
        with self._lock:
            self._remaining[key_contains] = self._remaining.get(key_contains, 0) + count

    def _take(self, key: str) -> bool:
        with self._lock:
            for text, remaining in self._remaining.items():
                if remaining > 0 and text in key:
                    self._remaining[text] = remaining - 1
                    self.failed.append(key)
                    return True
        return False

    def install(self) -> None:
        with _lock:
            if self in _installed:
                return
            if not _installed:
                _original["put_object"] = S3Response.__dict__["put_object"]
                S3Response.put_object = _patched_put_object  # type: ignore[method-assign,assignment]
            _installed.append(self)

    def uninstall(self) -> None:
        with _lock:
            if self not in _installed:
                return
            _installed.remove(self)
            if not _installed:
                S3Response.put_object = _original.pop("put_object")  # type: ignore[method-assign]
