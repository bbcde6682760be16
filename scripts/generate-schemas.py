"""Writes the drill report's JSON Schema, generated from its model, to both places it is
published: ``schemas/drill-report/<version>.json`` (the repository's) and
``shared/restoredrill/schemas/drill-report-<version>.json`` (the copy the Lambda layer ships).

``--check`` writes nothing and exits 1 when either file differs from the model (CI, and
``tests/unit/test_report_schema.py``, do the same). Earlier versions are never rewritten: reports
already stored follow them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restoredrill.domain.report.model import (
    REPORT_SCHEMA_VERSION,
    generated_report_schema,
    schema_text,
)

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (
    ROOT / "schemas" / "drill-report" / f"{REPORT_SCHEMA_VERSION}.json",
    ROOT / "shared" / "restoredrill" / "schemas" / f"drill-report-{REPORT_SCHEMA_VERSION}.json",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail on drift, write nothing")
    check = parser.parse_args(argv).check
    text = schema_text(generated_report_schema())
    stale = [path for path in TARGETS if not path.exists() or path.read_text() != text]
    if check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from the report's model", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
