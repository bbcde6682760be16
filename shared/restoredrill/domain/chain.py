"""Tamper evidence: every report carries the SHA-256 of the previous report of the same database,
so the reports of one database form a hash chain. Verifying it needs nothing but the stored bytes
and, where they are still kept, the digests the run table recorded when each report was published.

What the verification catches:
- a report edited after it was published: its bytes no longer hash to what its successor
  recorded (``tampered``), or to what the run table recorded (``anchor_mismatch``);
- a report deleted: its successor points at nothing (``missing``), or the run table names it;
- a report made up and slipped in: nothing links to it and it is not the newest (``unlinked``);
- a report copied or moved to another key (``misplaced``), or one that is not JSON.
Two drills of one database finishing at the same moment can both link to the same predecessor: a
``fork`` is reported as a warning, because the digests still hold.

With the bucket's version history (it is versioned; with Object Lock no version can be removed
before its retention ends), an edited report's original bytes are found among its older versions,
and a report that was overwritten and put back is reported as ``rewritten`` (a warning: the
digests hold, but someone wrote over the evidence). A repeated publish writes identical bytes, so
versions with equal digests are never reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

FindingKind = Literal[
    "tampered",
    "anchor_mismatch",
    "missing",
    "unlinked",
    "misplaced",
    "unreadable",
    "fork",
    "second_chain",
    "rewritten",
]
Severity = Literal["error", "warning"]
WARNINGS: frozenset[str] = frozenset({"fork", "second_chain", "rewritten"})


@dataclass(frozen=True)
class StoredReport:
    """One JSON report exactly as it is stored (its key and its bytes)."""

    key: str
    body: bytes


@dataclass(frozen=True)
class StoredVersion:
    """One version of a report object in the bucket's history, with the digest of its bytes."""

    version_id: str
    written_at: str
    sha256: str


class Finding(BaseModel):
    kind: FindingKind
    severity: Severity
    key: str
    message: str
    original_version: str | None = Field(
        default=None, description="the stored version that still holds the recorded bytes"
    )


class ChainLink(BaseModel):
    key: str
    run_id: str | None
    created_at: str | None
    verdict: str | None
    sha256: str
    previous_key: str | None
    chained: bool = Field(description="False for reports written before the chain (schema < 1.2)")


class ChainVerification(BaseModel):
    reports: int
    links_checked: int
    anchors_checked: int
    head: str | None
    links: list[ChainLink]
    findings: list[Finding]

    @property
    def intact(self) -> bool:
        return not any(finding.severity == "error" for finding in self.findings)


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def verify_chain(
    reports: Iterable[StoredReport],
    anchors: Mapping[str, str] | None = None,
    history: Mapping[str, Sequence[StoredVersion]] | None = None,
) -> ChainVerification:
    """Check the chain of one database's reports. ``anchors`` maps a report key to the SHA-256
    the run table recorded when it was published (runs past the table's retention have none);
    ``history`` maps a key to its stored versions, for the keys that have more than one."""
    anchors = anchors or {}
    history = history or {}
    stored = {report.key: report for report in reports}
    digests = {key: sha256_hex(report.body) for key, report in stored.items()}
    documents = {key: _parsed(report.body) for key, report in stored.items()}
    links, findings = _read_links(documents, digests)
    successors = _successors(links)
    findings += _broken_links(links, documents, digests)
    findings += _forks(successors)
    places = _places(links)
    head = _head(links, successors, places)
    findings += _disconnected(links, successors, places, head, set(stored), anchors)
    findings += _anchor_findings(anchors, digests)
    findings = _with_history(findings, digests, history, _recorded_digests(documents, anchors))
    findings.sort(key=lambda finding: (finding.severity != "error", finding.key, finding.kind))
    return ChainVerification(
        reports=len(stored),
        links_checked=sum(len(followers) for followers in successors.values()),
        anchors_checked=len(anchors),
        head=head,
        links=sorted(
            links,
            key=lambda link: (
                places[link.key].depth if link.key in places else 0,
                link.created_at or "",
            ),
        ),
        findings=findings,
    )


def _read_links(
    documents: Mapping[str, dict[str, Any] | None], digests: Mapping[str, str]
) -> tuple[list[ChainLink], list[Finding]]:
    """The link of every readable report; a finding for each unreadable or misplaced one."""
    findings: list[Finding] = []
    links: list[ChainLink] = []
    for key in sorted(documents):
        document = documents[key]
        if document is None:
            findings.append(_finding("unreadable", key, "not a JSON report"))
            continue
        links.append(_link(key, document, digests[key]))
        located = _dig(document, "location", "key")
        if located is not None and located != key:
            findings.append(
                _finding("misplaced", key, f"the report says it was published as {located}")
            )
    return links, findings


def _successors(links: list[ChainLink]) -> dict[str, list[str]]:
    """The reports that link to each report."""
    successors: dict[str, list[str]] = {}
    for link in links:
        if link.previous_key is not None:
            successors.setdefault(link.previous_key, []).append(link.key)
    return successors


def _broken_links(
    links: list[ChainLink],
    documents: Mapping[str, dict[str, Any] | None],
    digests: Mapping[str, str],
) -> list[Finding]:
    """A link to a report that is not stored, or whose bytes are not those it recorded."""
    findings: list[Finding] = []
    for link in links:
        if link.previous_key is None:
            continue
        recorded = _dig(documents[link.key] or {}, "chain", "previous", "sha256")
        if link.previous_key not in digests:
            findings.append(
                _finding(
                    "missing",
                    link.previous_key,
                    f"{link.key} links to this report, which is not in the bucket",
                )
            )
        elif digests[link.previous_key] != recorded:
            findings.append(
                _finding(
                    "tampered",
                    link.previous_key,
                    f"its bytes hash to {digests[link.previous_key]}, but {link.key} recorded "
                    f"{recorded} when it was published",
                )
            )
    return findings


def _forks(successors: Mapping[str, list[str]]) -> list[Finding]:
    return [
        _finding(
            "fork",
            predecessor,
            f"{len(followers)} reports link to it ({', '.join(sorted(followers))}): "
            "drills of this database finished at the same time",
        )
        for predecessor, followers in sorted(successors.items())
        if len(followers) > 1
    ]


def _disconnected(
    links: list[ChainLink],
    successors: Mapping[str, list[str]],
    places: Mapping[str, _Place],
    head: str | None,
    stored: set[str],
    anchors: Mapping[str, str],
) -> list[Finding]:
    """The ends of chains other than the head's.

    Branches of a fork end in leaves of their own but start where the chain starts; a report
    on a chain of its own (started afresh, or cut off by a missing report) is not connected.
    Two first drills publishing at once both start a chain; that is told apart from a report
    slipped in afterwards by the run table, which recorded every report on a real one."""
    findings: list[Finding] = []
    previous = {link.key: link.previous_key for link in links}
    head_root = places[head].root if head is not None else None
    for link in links:
        if not link.chained or link.key in successors or link.key == head:
            continue
        root = places[link.key].root
        if root == head_root:
            continue
        segment = _walk_back(link.key, previous)
        if head_root in stored and root in stored and all(key in anchors for key in segment):
            findings.append(
                _finding(
                    "second_chain",
                    link.key,
                    f"its chain starts at {root}, beside the one the newest report is on: drills "
                    "of this database published their first reports at the same time (the run "
                    "table recorded every report on it)",
                )
            )
            continue
        findings.append(
            _finding(
                "unlinked",
                link.key,
                "nothing links it to the chain's newest report: a report after it was removed, "
                "or this one was added afterwards",
            )
        )
    return findings


def _anchor_findings(anchors: Mapping[str, str], digests: Mapping[str, str]) -> list[Finding]:
    """A report the run table recorded that is not stored, or whose bytes changed since."""
    findings: list[Finding] = []
    for key, recorded in sorted(anchors.items()):
        if key not in digests:
            findings.append(
                _finding("missing", key, "the run table records this report; it is not stored")
            )
        elif digests[key] != recorded:
            findings.append(
                _finding(
                    "anchor_mismatch",
                    key,
                    f"its bytes hash to {digests[key]}, but the run table recorded {recorded} "
                    "when it was published",
                )
            )
    return findings


def _recorded_digests(
    documents: Mapping[str, dict[str, Any] | None], anchors: Mapping[str, str]
) -> dict[str, set[str]]:
    """Every digest recorded for a key: by the report after it, and by the run table."""
    recorded: dict[str, set[str]] = {key: {digest} for key, digest in anchors.items()}
    for document in documents.values():
        if document is None:
            continue
        key = _dig(document, "chain", "previous", "key")
        digest = _dig(document, "chain", "previous", "sha256")
        if key is not None and digest is not None:
            recorded.setdefault(key, set()).add(digest)
    return recorded


def _with_history(
    findings: list[Finding],
    digests: Mapping[str, str],
    history: Mapping[str, Sequence[StoredVersion]],
    recorded: Mapping[str, set[str]],
) -> list[Finding]:
    """Name the version that still holds an edited report's original bytes; report a report
    whose history holds other bytes than the ones recorded, though its current bytes match."""
    result = []
    for finding in findings:
        if finding.kind in ("tampered", "anchor_mismatch"):
            original = next(
                (
                    version
                    for version in history.get(finding.key, ())
                    if version.sha256 in recorded.get(finding.key, set())
                ),
                None,
            )
            if original is not None:
                finding = finding.model_copy(
                    update={
                        "message": f"{finding.message}; the original bytes are still stored as "
                        f"version {original.version_id} (written {original.written_at})",
                        "original_version": original.version_id,
                    }
                )
        result.append(finding)
    for key, versions in sorted(history.items()):
        expected = recorded.get(key, set())
        if key not in digests or digests[key] not in expected:
            continue
        others = [version for version in versions if version.sha256 not in expected]
        if others:
            written = ", ".join(f"{v.version_id} ({v.written_at})" for v in others)
            result.append(
                _finding(
                    "rewritten",
                    key,
                    f"the current bytes are the recorded ones, but other bytes were written over "
                    f"this report and later replaced: version(s) {written}",
                )
            )
    return result


def _finding(kind: FindingKind, key: str, message: str) -> Finding:
    severity: Severity = "warning" if kind in WARNINGS else "error"
    return Finding(kind=kind, severity=severity, key=key, message=message)


def _parsed(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _dig(document: Mapping[str, Any], *path: str) -> str | None:
    value: Any = document
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value if isinstance(value, str) else None


def _link(key: str, document: dict[str, Any], digest: str) -> ChainLink:
    chain = document.get("chain")
    return ChainLink(
        key=key,
        run_id=_dig(document, "run", "run_id"),
        created_at=_dig(document, "run", "created_at"),
        verdict=_dig(document, "verdict"),
        sha256=digest,
        previous_key=_dig(document, "chain", "previous", "key"),
        chained=isinstance(chain, Mapping),
    )


@dataclass(frozen=True)
class _Place:
    depth: int  # stored reports this one stands on, itself included
    root: str  # where its chain starts: its first report, or a missing report's key


def _places(links: list[ChainLink]) -> dict[str, _Place]:
    """Each chained report's place, walking every link back once (known places end a walk)."""
    previous = {link.key: link.previous_key for link in links if link.chained}
    places: dict[str, _Place] = {}
    for key in previous:
        path: list[str] = []
        cursor: str | None = key
        while cursor in previous and cursor not in places and cursor not in path:
            path.append(cursor)
            cursor = previous[cursor]
        if cursor in places:
            below = places[cursor]
        elif cursor is None or cursor in path:
            below = _Place(0, path[-1])  # the chain's first report (or a forged cycle)
        else:
            below = _Place(0, cursor)  # a report the chain names that is not stored as chained
        for number, walked in enumerate(reversed(path), start=1):
            places[walked] = _Place(below.depth + number, below.root)
    return places


def _walk_back(key: str, previous: Mapping[str, str | None]) -> list[str]:
    """``key`` and every stored report before it, as far as the links go."""
    walked: list[str] = []
    cursor: str | None = key
    while cursor is not None and cursor in previous and cursor not in walked:
        walked.append(cursor)
        cursor = previous[cursor]
    return walked


def _head(
    links: list[ChainLink], successors: Mapping[str, list[str]], places: Mapping[str, _Place]
) -> str | None:
    """The end of the chain: of the reports nothing links to, the one on the longest chain (the
    newest on a tie). Chain order is publish order, which the times in a report do not give."""
    leaves = [link for link in links if link.chained and link.key not in successors]
    if not leaves:
        return None
    return max(leaves, key=lambda link: (places[link.key].depth, link.created_at or "")).key
