"""The check suite: levels 0 (connect) to 3 (physical) against one PostgreSQL instance.

``run_check_suite(target, policy, baseline=..., snapshot_time=..., vcpus=...)`` returns a
:class:`CheckSuiteResult` (JSON-serialisable, no secrets) with a verdict, one
:class:`CheckResult` per check and the baseline for the next drill.
"""

from restoredrill.baseline import Baseline
from restoredrill.checks.models import (
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    ConnectionTarget,
    SuiteVerdict,
)
from restoredrill.checks.runner import default_parallelism, run_check_suite
from restoredrill.checks.sql import quote_ident

__all__ = [
    "Baseline",
    "CheckResult",
    "CheckStatus",
    "CheckSuiteResult",
    "ConnectionTarget",
    "SuiteVerdict",
    "default_parallelism",
    "quote_ident",
    "run_check_suite",
]
