"""The report's JSON Schema as shipped in the layer, one file per published version.

It is generated from :class:`~restoredrill.domain.report.model.DrillReport` and kept in
``restoredrill/schemas/drill-report-<version>.json`` (:data:`REPORT_SCHEMA_PATH`, read with
:func:`report_schema`); its ``$id`` ends with
:data:`~restoredrill.domain.report.model.REPORT_SCHEMA_VERSION`, which every report carries as
``schema_version``. The repository keeps the same file as ``schemas/drill-report/<version>.json``,
beside the earlier versions that stored reports follow.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from restoredrill.domain.report.model import REPORT_SCHEMA_VERSION

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
PUBLISHED_SCHEMA_VERSIONS = ("1.1", "1.2", "1.3", "1.4", "1.5", "1.6")
REPORT_SCHEMA_PATH = SCHEMA_DIR / f"drill-report-{REPORT_SCHEMA_VERSION}.json"


def report_schema_path(version: str) -> Path:
    return SCHEMA_DIR / f"drill-report-{version}.json"


@cache
def report_schema(version: str = REPORT_SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of one version of the report; by default the one every report written
    now validates against (see the module's docstring). Reports already stored follow the
    version they name in ``schema_version``."""
    if version not in PUBLISHED_SCHEMA_VERSIONS:
        raise ValueError(f"no drill report schema {version!r}")
    schema: dict[str, Any] = json.loads(report_schema_path(version).read_text(encoding="utf-8"))
    return schema
