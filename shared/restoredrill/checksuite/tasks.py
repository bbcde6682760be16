"""Independent pieces of checking work, run over several connections at once within a time
budget.

A :class:`Task` is one statement (for one relation, or a batch of small ones). Workers, one
thread and one connection each, take the most expensive task left first. A batch whose statement
fails is split into one task per item, so that the culprit is named and the others still pass.
When the budget is spent the remaining tasks become ``skipped`` outcomes (never silently lost),
and a statement still running is cancelled by its ``statement_timeout``, which never reaches past
the deadline.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from restoredrill.checksuite.connection import CheckConnection, ServerError, classify_error
from restoredrill.checksuite.results import CheckStatus

# Estimated work (roughly: bytes to read) that justifies opening one more connection.
WORKER_MIN_COST = 8 << 20

__all__ = ["Budget", "ConnectionLost", "Outcome", "Task", "TaskPool", "error_outcomes"]


class ConnectionLost(Exception):
    """The connection broke while running a task (server crash, network): try another one."""

    def __init__(self, error: ServerError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Outcome:
    """The result of one task for one item (a table, an index, a rule)."""

    kind: str
    key: str
    status: CheckStatus
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    item: Any = None


# A task's body: given a connection, return outcomes, or return smaller tasks to run instead.
Runner = Callable[["Task", CheckConnection, "Budget"], "list[Outcome] | list[Task]"]


@dataclass
class Task:
    kind: str
    items: Sequence[Any]
    keys: Sequence[str]
    cost: float
    runner: Runner
    params: dict[str, Any] = field(default_factory=dict)

    def skipped(self, message: str) -> list[Outcome]:
        return [
            Outcome(self.kind, key, CheckStatus.SKIPPED, message, item=item)
            for key, item in zip(self.keys, self.items, strict=True)
        ]


def error_outcomes(task: Task, status: CheckStatus, error: ServerError, what: str) -> list[Outcome]:
    return [
        Outcome(task.kind, key, status, f"{what}: {error}", error.as_evidence(), item=item)
        for key, item in zip(task.keys, task.items, strict=True)
    ]


class Budget:
    """The suite's deadline and its statement timeout."""

    def __init__(self, seconds: float, statement_timeout_s: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.statement_timeout_ms = max(1, int(statement_timeout_s * 1000))

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def exhausted(self) -> bool:
        return self.remaining_s() <= 0.01

    def arm(self, connection: CheckConnection) -> None:
        """Make sure the next statement on ``connection`` cannot outlive the deadline."""
        remaining_ms = int(self.remaining_s() * 1000)
        if connection.timeout_ms > remaining_ms:
            connection.set_timeout(remaining_ms)

    def cut_short(self, connection: CheckConnection) -> bool:
        """True when ``connection``'s timeout was lowered to fit the budget (so a cancelled
        statement was cut by the budget, not by the statement timeout)."""
        return connection.timeout_ms < self.statement_timeout_ms

    @property
    def skipped_message(self) -> str:
        return f"not run: the time budget of {self.seconds:g} s was spent"


def failed_statement(
    task: Task,
    connection: CheckConnection,
    budget: Budget,
    exc: BaseException,
    secrets: Sequence[str],
) -> list[Outcome] | list[Task]:
    """What a failed statement means: corruption (fail), the budget (skipped), anything else
    (error); a batch is split instead so every item gets its own verdict."""
    error = classify_error(exc, *secrets)
    if error.connection_lost:
        raise ConnectionLost(error) from None
    if len(task.items) > 1:
        return split(task)
    if error.canceled and budget.cut_short(connection):
        return task.skipped(budget.skipped_message)
    if error.canceled:
        return error_outcomes(
            task,
            CheckStatus.ERROR,
            error,
            f"statement timeout ({budget.statement_timeout_ms / 1000:g} s)",
        )
    if error.corruption:
        return error_outcomes(task, CheckStatus.FAIL, error, "the server could not read the data")
    return error_outcomes(task, CheckStatus.ERROR, error, "the check could not run")


def split(task: Task) -> list[Task]:
    return [
        Task(
            task.kind, [item], [key], task.cost / max(1, len(task.items)), task.runner, task.params
        )
        for key, item in zip(task.keys, task.items, strict=True)
    ]


def _priority(task: Task) -> float:
    """Sort key of the queue: the most expensive task first (longest processing time first)."""
    return -task.cost


@dataclass
class _Lane:
    """One worker's connection: whether the pool opened it (and so closes it), and how often it
    was replaced after being lost."""

    connection: CheckConnection | None
    own: bool
    reconnects: int = 0

    def close(self) -> None:
        if self.own and self.connection is not None:
            self.connection.close()


class TaskPool:
    """Run tasks over up to ``jobs`` connections to one database.

    The queue stays sorted by cost, most expensive first, also for tasks that a running task
    hands back (a split batch, or the work a preparation task discovers): each free connection
    takes the biggest task left, which keeps the connections busy until about the same time.
    A worker that finds the queue empty waits while another task is still running, as that one
    may still add work.
    """

    def __init__(
        self,
        *,
        tasks: list[Task],
        jobs: int,
        budget: Budget,
        first: CheckConnection,
        opener: Callable[[], CheckConnection],
        secrets: Sequence[str],
    ) -> None:
        self._queue = sorted(tasks, key=_priority)
        self._jobs = max(1, jobs)
        self._budget = budget
        self._first = first
        self._opener = opener
        self._secrets = secrets
        self._changed = threading.Condition()
        self._running = 0
        self._outcomes: list[Outcome] = []
        self._connect_errors: list[ServerError] = []

    def _next(self) -> Task | None:
        with self._changed:
            while not self._queue and self._running:
                self._changed.wait()
            if not self._queue:
                return None
            self._running += 1
            return self._queue.pop(0)

    def _done(self, more: list[Task]) -> None:
        with self._changed:
            for task in more:
                bisect.insort(self._queue, task, key=_priority)
            self._running -= 1
            self._changed.notify_all()

    def _work_left(self) -> bool:
        with self._changed:
            return bool(self._queue or self._running)

    def _record(self, outcomes: list[Outcome]) -> None:
        with self._changed:
            self._outcomes.extend(outcomes)

    def run(self) -> list[Outcome]:
        if not self._queue:
            return []
        # another connection costs a few milliseconds: open one per WORKER_MIN_COST of work
        total = sum(task.cost for task in self._queue)
        workers = 1 + min(self._jobs - 1, len(self._queue) - 1, int(total // WORKER_MIN_COST))
        threads = [
            threading.Thread(target=self._work, args=(None,), name=f"restoredrill-check-{n}")
            for n in range(1, workers)
        ]
        for thread in threads:
            thread.start()
        self._work(self._first)
        for thread in threads:
            thread.join()
        # every worker is gone (could not connect, or lost its connection): nothing is lost
        leftover, self._queue = self._queue, []
        for task in leftover:
            self._outcomes.extend(self._unrun(task))
        return self._outcomes

    def _unrun(self, task: Task) -> list[Outcome]:
        if self._budget.exhausted():
            return task.skipped(self._budget.skipped_message)
        message = "no connection left to run it"
        if self._connect_errors:
            message += f": {self._connect_errors[-1]}"
        return [
            Outcome(task.kind, key, CheckStatus.ERROR, message, item=item)
            for key, item in zip(task.keys, task.items, strict=True)
        ]

    def _connect(self) -> CheckConnection | None:
        try:
            return self._opener()
        except Exception as exc:
            with self._changed:
                self._connect_errors.append(classify_error(exc, *self._secrets))
            return None

    def _arm(self, connection: CheckConnection) -> None:
        try:
            self._budget.arm(connection)
        except Exception as exc:
            raise ConnectionLost(classify_error(exc, *self._secrets)) from None

    def _work(self, connection: CheckConnection | None) -> None:
        """One worker: take the biggest task left until none is left or the connection is
        gone for good. ``connection`` is the caller's; ``None``: open one (and close it)."""
        if connection is None:
            if self._budget.exhausted() or not self._work_left():
                return
            connection = self._connect()
            lane = _Lane(connection, own=True)
        else:
            lane = _Lane(connection, own=False)
        try:
            while lane.connection is not None and (task := self._next()) is not None:
                more: list[Task] = []
                try:
                    more = self._attempt(task, lane)
                finally:
                    self._done(more)
        finally:
            lane.close()

    def _attempt(self, task: Task, lane: _Lane) -> list[Task]:
        """Run ``task`` on the lane's connection: record its outcomes, or return the tasks it
        handed back."""
        assert lane.connection is not None
        if self._budget.exhausted():
            self._record(task.skipped(self._budget.skipped_message))
            return []
        started = time.perf_counter()
        try:
            self._arm(lane.connection)
            result = task.runner(task, lane.connection, self._budget)
        except ConnectionLost as lost:
            self._record(error_outcomes(task, CheckStatus.ERROR, lost.error, "connection lost"))
            self._replace(lane)
            return []
        except Exception as exc:  # a bug must not lose the other tasks
            error = classify_error(exc, *self._secrets)
            self._record(error_outcomes(task, CheckStatus.ERROR, error, "internal error"))
            return []
        more = [item for item in result if isinstance(item, Task)]
        if more:
            return more
        outcomes = [item for item in result if isinstance(item, Outcome)]
        elapsed_ms = (time.perf_counter() - started) * 1000
        for outcome in outcomes:
            if not outcome.duration_ms:
                outcome.duration_ms = elapsed_ms / max(1, len(outcomes))
        self._record(outcomes)
        return []

    def _replace(self, lane: _Lane) -> None:
        """A lost connection is replaced once; after a second loss the worker stops."""
        lane.close()
        if lane.reconnects >= 1:
            lane.connection = None
            return
        lane.reconnects += 1
        lane.connection, lane.own = self._connect(), True
