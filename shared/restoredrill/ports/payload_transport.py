"""How a JSON document travels through a size-limited channel (a Lambda invoke payload, an async
destination record, a queue message): as is when small, else gzip+base64 of its JSON with a few
summary fields beside it that stay readable without unpacking."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

# What pack_document() keeps as plain JSON; larger documents are compressed (a Lambda invoke
# payload or async destination record carries at most 256 KB).
PAYLOAD_PLAIN_LIMIT = 200_000
PAYLOAD_ENCODING = "gzip+base64"


def pack_document(
    document: dict[str, Any], max_plain_bytes: int = PAYLOAD_PLAIN_LIMIT, **summary: Any
) -> dict[str, Any]:
    """``document`` as is when its JSON is small, else ``{"encoding": "gzip+base64", "data": ...}``
    (plus ``summary`` fields, readable without unpacking)."""
    text = json.dumps(document, separators=(",", ":"))
    if len(text.encode("utf-8")) <= max_plain_bytes:
        return document
    packed = base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")
    return {"encoding": PAYLOAD_ENCODING, **summary, "data": packed}


def unpack_document(payload: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`pack_document` (a plain document comes back unchanged)."""
    if payload.get("encoding") == PAYLOAD_ENCODING:
        document: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(payload["data"])))
        return document
    return payload
