"""The check suite: what runs inside the checker against one PostgreSQL instance, levels 0
(connect) to 3 (physical); each family of checks is in :mod:`.families`, named for what it checks.

``run_check_suite(target, policy, baseline=..., snapshot_time=..., vcpus=...)`` returns a
:class:`CheckSuiteResult` (JSON-serialisable, no secrets) with a verdict, one
:class:`CheckResult` per check and the baseline for the next drill.
"""

from restoredrill.checksuite.results import (
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    ConnectionTarget,
    SuiteVerdict,
)
from restoredrill.checksuite.sql import quote_ident
from restoredrill.checksuite.suite import default_parallelism, run_check_suite
from restoredrill.ports.baseline import Baseline

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
