"""What the sweeper tells CloudWatch: the metrics its alarms watch, as Lambda would publish them.

The handler runs with the sweep itself replaced (no AWS), and its embedded-metric-format line is
read from stdout, where Lambda hands it to CloudWatch.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from restoredrill.composition.telemetry import ORPHANS_DELETED, RUNS_TIMED_OUT, SWEEP_RUNS_FAILED
from restoredrill.domain.drill import SweepSummary

SWEEPER = Path(__file__).resolve().parents[2] / "functions" / "sweeper" / "app.py"
STACK = "restoredrill-prod"


@dataclass(frozen=True)
class LambdaContextStub:
    function_name: str = f"{STACK}-SweeperFunction-0A1B2C3D4E5F"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        f"arn:aws:lambda:eu-west-1:123456789012:function:{STACK}-SweeperFunction-0A1B2C3D4E5F"
    )
    aws_request_id: str = "0f6b8bd2-3d1c-4e8e-9a51-2f7d33c8a1b0"


def load_sweeper(monkeypatch: pytest.MonkeyPatch, summary: SweepSummary) -> ModuleType:
    """functions/sweeper/app.py as template.yaml configures it, with the sweep's outcome given."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "restoredrill")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", STACK)
    spec = importlib.util.spec_from_file_location("sweeper_under_test", SWEEPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = object()
    monkeypatch.setattr(module, "drill_context", lambda: context)
    monkeypatch.setattr(
        module, "sweep", lambda ctx: summary if ctx is context else pytest.fail("another context")
    )
    return module


def published_metrics(stdout: str) -> dict[str, Any]:
    """The one embedded-metric-format document the invocation printed."""
    documents: list[dict[str, Any]] = [
        json.loads(line) for line in stdout.splitlines() if '"_aws"' in line
    ]
    assert len(documents) == 1, stdout
    return documents[0]


def test_the_sweeper_publishes_the_runs_it_could_not_advance(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a sweep that timed out one run, deleted one orphan and could not advance two runs
    summary = SweepSummary(
        runs_advanced=5,
        runs_timed_out=1,
        orphans_deleted=["restoredrill-0123456789abcdef0123"],
        runs_failed=2,
    )
    sweeper = load_sweeper(monkeypatch, summary)
    # When the scheduled sweep runs
    answer = sweeper.handler({"source": "aws.events"}, LambdaContextStub())
    # Then one metrics document carries each count, in the namespace and under the service
    # dimension the alarms of template.yaml watch
    document = published_metrics(capsys.readouterr().out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "restoredrill"
    assert directive["Dimensions"] == [["service"]] and document["service"] == STACK
    counts = {m["Name"]: (document[m["Name"]], m["Unit"]) for m in directive["Metrics"]}
    assert counts[SWEEP_RUNS_FAILED] == ([2.0], "Count")
    assert counts[RUNS_TIMED_OUT] == ([1.0], "Count")
    assert counts[ORPHANS_DELETED] == ([1.0], "Count")
    # And the invocation's answer says the same
    assert answer["runs_failed"] == 2 and answer["runs_timed_out"] == 1


def test_a_clean_sweep_publishes_zero_failures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a sweep that advanced every run
    sweeper = load_sweeper(
        monkeypatch,
        SweepSummary(runs_advanced=3, runs_timed_out=0, orphans_deleted=[], runs_failed=0),
    )
    # When it runs
    sweeper.handler({"source": "aws.events"}, LambdaContextStub())
    # Then it still publishes the failure count, as 0: every sweep is a data point
    document = published_metrics(capsys.readouterr().out)
    assert document[SWEEP_RUNS_FAILED] == [0.0]
