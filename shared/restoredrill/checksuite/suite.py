"""``run_check_suite``: every check of the policy's level against one PostgreSQL instance.

Order: level 0 on one connection (connect, TLS, version, recovery, databases), then for each
database to check: its catalog and schema fingerprint (level 1) on one connection, then the
independent data and physical checks (levels 2 and 3) as tasks of one pool over
``parallelism`` connections, the most expensive first. Level 3's preparation (amcheck, the list
of heaps and indexes) is itself a task of that pool: the row counts start while it runs, and
the verifications it hands back join the same queue. Nothing raises for database problems:
they become results.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

from restoredrill.checksuite.connection import CheckConnection, classify_error, connect
from restoredrill.checksuite.database_catalog import DatabaseCatalog, read_catalog
from restoredrill.checksuite.families.catalog import catalog_check, schema_check
from restoredrill.checksuite.families.data import (
    assertion_result,
    assertion_task,
    count_tasks,
    fingerprint_check,
    freshness_result,
    freshness_task,
    row_count_check,
)
from restoredrill.checksuite.families.instance import (
    InstanceInfo,
    databases_to_check,
    instance_checks,
    read_instance,
    roles_check,
)
from restoredrill.checksuite.families.physical import AmcheckStage
from restoredrill.checksuite.plan import DatabasePlan, read_database_plan
from restoredrill.checksuite.results import (
    CheckResult,
    CheckStatus,
    CheckSuiteResult,
    ConnectionTarget,
    SuiteVerdict,
    summarize,
    verdict_of,
)
from restoredrill.checksuite.tasks import Budget, Outcome, Task, TaskPool
from restoredrill.ports.baseline import Baseline, DatabaseBaseline, carry_forward
from restoredrill.ports.policy import DrillPolicy, FreshnessRule

__all__ = ["default_parallelism", "plan_check_suite", "run_check_suite"]


def default_parallelism(policy: DrillPolicy, vcpus: int | None) -> int:
    """The policy's parallelism, else the instance's vCPUs, else 2."""
    if policy.parallelism:
        return policy.parallelism
    if vcpus and vcpus > 0:
        return vcpus
    return 2


def _now() -> datetime:
    return datetime.now(UTC)


class _Suite:
    def __init__(
        self,
        target: ConnectionTarget,
        policy: DrillPolicy,
        baseline: Baseline | None,
        snapshot_time: datetime | None,
        vcpus: int | None,
        install_amcheck: bool,
        planning: bool = False,
    ) -> None:
        self.target = target
        # Levels 2 and 3's counts and verifications are planned here and run later, in rounds.
        self.planning = planning
        self.plans: list[DatabasePlan] = []
        self.policy = policy
        self.previous = baseline
        self.snapshot_time = snapshot_time
        self.jobs = default_parallelism(policy, vcpus)
        self.install_amcheck = install_amcheck
        self.secrets = [target.password.get_secret_value()]
        self.budget = Budget(policy.time_budget, policy.statement_timeout)
        # At level 3 the pool keeps every vCPU busy with independent scans: parallel query
        # workers on top would only oversubscribe the instance.
        self.settings: dict[str, str] = {}
        if policy.level >= 3 and (vcpus is None or self.jobs >= vcpus):
            self.settings["max_parallel_workers_per_gather"] = "0"
        self.results: list[CheckResult] = []
        self.databases: dict[str, DatabaseBaseline] = {}
        self.server_version: str | None = None
        self.instance: InstanceInfo | None = None
        self.freshness_found: set[int] = set()
        self.assertions_run: set[str] = set()
        self.skipped_databases: set[str] = set()

    # -- helpers --------------------------------------------------------------------------------

    def _connect(self, database: str) -> CheckConnection:
        return connect(self.target, database, self.policy.statement_timeout, self.settings)

    def _connect_error(self, exc: BaseException, database: str, level: int) -> CheckResult:
        error = classify_error(exc, *self.secrets)
        t = self.target
        return CheckResult(
            name="connect",
            level=level,
            status=CheckStatus.ERROR,
            database=database,
            message=(
                f"could not connect to {t.host}:{t.port} database {database!r} as {t.user!r} "
                f"(ssl={t.ssl}): {error}"
            ),
            evidence={
                "host": t.host,
                "port": t.port,
                "database": database,
                "user": t.user,
                "ssl": t.ssl,
            }
            | error.as_evidence(),
        )

    def _skip_database(self, database: str) -> None:
        """The budget ran out before this database: report each check it would have had."""
        self.skipped_databases.add(database)
        names = [(1, "catalog"), (1, "schema_fingerprint"), (2, "row_counts")]
        if self.policy.content_fingerprint.enabled:
            names.append((2, "content_fingerprint"))
        names += [(3, "amcheck_heap"), (3, "amcheck_btree")]
        for level, name in names:
            if level <= self.policy.level:
                self.results.append(
                    CheckResult(
                        name=name,
                        level=level,
                        status=CheckStatus.SKIPPED,
                        database=database,
                        message=self.budget.skipped_message,
                    )
                )

    # -- the suite ------------------------------------------------------------------------------

    def run(self) -> tuple[list[CheckResult], Baseline | None]:
        started = time.perf_counter()
        try:
            admin = self._connect(self.target.database)
        except Exception as exc:
            self.results.append(self._connect_error(exc, self.target.database, 0))
            return self.results, None
        connect_ms = (time.perf_counter() - started) * 1000
        t = self.target
        self.results.append(
            CheckResult(
                name="connect",
                level=0,
                status=CheckStatus.PASS,
                message=f"logged in to {t.host}:{t.port} database {t.database!r} as {t.user!r}",
                evidence={
                    "host": t.host,
                    "port": t.port,
                    "database": t.database,
                    "user": t.user,
                    "ssl": t.ssl,
                    "connect_ms": round(connect_ms, 1),
                },
                duration_ms=connect_ms,
            )
        )
        connections = [admin]
        try:
            return self._run_connected(admin, connections)
        finally:
            for connection in connections:
                connection.close()

    def _run_connected(
        self, admin: CheckConnection, connections: list[CheckConnection]
    ) -> tuple[list[CheckResult], Baseline | None]:
        started = time.perf_counter()
        try:
            info = read_instance(admin)
        except Exception as exc:
            error = classify_error(exc, *self.secrets)
            self.results.append(
                CheckResult(
                    name="server_version",
                    level=0,
                    status=CheckStatus.ERROR,
                    message=f"could not read the instance's state: {error}",
                    evidence=error.as_evidence(),
                )
            )
            return self.results, None
        self.instance = info
        self.server_version = info.server_version
        self._without_jit(admin, info)
        self.results += instance_checks(
            info, self.target, self.policy, self.previous, (time.perf_counter() - started) * 1000
        )
        baseline = Baseline(
            taken_at=_now(),
            server_version=info.server_version,
            level=self.policy.level,
            database_names=info.connectable,
        )
        if self.policy.level >= 1:
            self.results.append(roles_check(info, self.policy, self.previous))
            baseline.roles = info.roles
            for database in databases_to_check(info, self.policy):
                if self.budget.exhausted():
                    self._skip_database(database)
                    continue
                if database == admin.database:
                    self._check_database(database, admin)
                    continue
                try:
                    connection = self._connect(database)
                except Exception as exc:
                    self.results.append(self._connect_error(exc, database, 1))
                    continue
                connections.append(connection)
                self._check_database(database, connection)
                connection.close()
            self._unresolved_rules()
        baseline.databases = self.databases
        return self.results, carry_forward(baseline, self.previous)

    def _without_jit(self, admin: CheckConnection, info: InstanceInfo) -> None:
        """Turn JIT compilation off for levels 2 and 3: their statements are single scans of
        well under a minute, for which compiling (and loading the LLVM library into each new
        backend) costs more than it saves (a count of 5 million rows: 13 ms of 270). The
        setting exists from PostgreSQL 11; an older server keeps its default."""
        if self.policy.level < 2 or info.server_version_num < 110000:
            return
        self.settings["jit"] = "off"
        with contextlib.suppress(Exception):  # an optimisation: the checks run without it
            admin.run("SET jit = off")

    def _previous_db(self, database: str) -> DatabaseBaseline | None:
        if self.previous is None:
            return None
        return self.previous.databases.get(database)

    def _check_database(self, database: str, connection: CheckConnection) -> None:
        started = time.perf_counter()
        try:
            catalog = read_catalog(connection)
        except Exception as exc:
            error = classify_error(exc, *self.secrets)
            self.results.append(
                CheckResult(
                    name="catalog",
                    level=1,
                    status=CheckStatus.FAIL if error.corruption else CheckStatus.ERROR,
                    database=database,
                    message=f"could not read the catalog: {error}",
                    evidence=error.as_evidence(),
                )
            )
            return
        self.results.append(catalog_check(catalog, (time.perf_counter() - started) * 1000))
        current = catalog.to_baseline()
        previous = self._previous_db(database)
        self.results.append(schema_check(current, previous, self.policy, database))
        self.databases[database] = current
        if self.policy.level < 2:
            return

        tasks: list[Task] = [] if self.planning else count_tasks(catalog, self.policy, self.secrets)
        tasks += self._freshness_tasks(catalog)
        tasks += [
            assertion_task(a, self.secrets)
            for a in self.policy.assertions
            if (a.database or self.target.database) == database
        ]
        stage: AmcheckStage | None = None
        if self.planning:
            self._plan_database(catalog, connection)
        elif self.policy.level >= 3:
            stage = AmcheckStage(catalog, self.policy, self.install_amcheck, self.secrets)
            tasks.append(stage.task())
        pool = TaskPool(
            tasks=tasks,
            jobs=self.jobs,
            budget=self.budget,
            first=connection,
            opener=lambda: self._connect(database),
            secrets=self.secrets,
        )
        outcomes = pool.run()
        self._level2_results(catalog, outcomes, previous, current)
        if stage is not None:
            self.results += stage.results(outcomes)

    def _plan_database(self, catalog: DatabaseCatalog, connection: CheckConnection) -> None:
        try:
            plan = read_database_plan(
                connection,
                catalog,
                self.policy,
                install_amcheck=self.install_amcheck,
                secrets=self.secrets,
                task_bytes=self.policy.rounds.task_mib << 20,
            )
        except Exception as exc:
            error = classify_error(exc, *self.secrets)
            self.results.append(
                CheckResult(
                    name="check_plan",
                    level=2,
                    status=CheckStatus.FAIL if error.corruption else CheckStatus.ERROR,
                    database=catalog.database,
                    message=f"could not plan the data checks: {error}",
                    evidence=error.as_evidence(),
                )
            )
            return
        self.plans.append(plan)

    def _freshness_tasks(self, catalog: DatabaseCatalog) -> list[Task]:
        tasks = []
        for index, rule in enumerate(self.policy.freshness):
            if rule.database is not None and rule.database != catalog.database:
                continue
            relation = catalog.find(rule.schema_name, rule.table)
            if relation is None:
                continue
            self.freshness_found.add(index)
            tasks.append(freshness_task(rule, relation, self.snapshot_time, self.secrets))
        return tasks

    def _level2_results(
        self,
        catalog: DatabaseCatalog,
        outcomes: list[Outcome],
        previous: DatabaseBaseline | None,
        current: DatabaseBaseline,
    ) -> None:
        database = catalog.database
        kinds: dict[str, list[Outcome]] = {}
        for outcome in outcomes:
            kinds.setdefault(outcome.kind, []).append(outcome)
        if not self.planning:
            self._count_results(catalog, kinds, previous, current)
        for outcome in kinds.get("freshness", []):
            self.results.append(freshness_result(outcome, database))
        for outcome in kinds.get("assertion", []):
            self.assertions_run.add(outcome.key)
            self.results.append(assertion_result(outcome, database))

    def _count_results(
        self,
        catalog: DatabaseCatalog,
        kinds: dict[str, list[Outcome]],
        previous: DatabaseBaseline | None,
        current: DatabaseBaseline,
    ) -> None:
        if self.policy.content_fingerprint.enabled:
            fp_outcomes = kinds.get("fingerprint", [])
            result, counts = row_count_check(catalog, fp_outcomes, previous, self.policy)
            self.results.append(result)
            current.row_counts = counts
            fp_result, fingerprints = fingerprint_check(catalog, fp_outcomes, previous, self.policy)
            self.results.append(fp_result)
            current.content_fingerprints = fingerprints
        else:
            result, counts = row_count_check(catalog, kinds.get("count", []), previous, self.policy)
            self.results.append(result)
            current.row_counts = counts

    def _unresolved_rules(self) -> None:
        """Freshness rules whose table no checked database has, assertions never run."""
        if self.policy.level < 2:
            return
        checked = set(self.databases)
        for index, rule in enumerate(self.policy.freshness):
            if index in self.freshness_found:
                continue
            if self.skipped_databases and (
                rule.database is None or rule.database in self.skipped_databases
            ):
                self.results.append(
                    CheckResult(
                        name="freshness",
                        level=2,
                        status=CheckStatus.SKIPPED,
                        database=rule.database,
                        object=rule.label,
                        message=self.budget.skipped_message,
                    )
                )
                continue
            self.results.append(_missing_table(rule, checked))
        for assertion in self.policy.assertions:
            if assertion.name in self.assertions_run:
                continue
            database = assertion.database or self.target.database
            if self.budget.exhausted():
                status, message = CheckStatus.SKIPPED, self.budget.skipped_message
            else:
                status = CheckStatus.ERROR
                message = (
                    f"database {database!r} was not checked (excluded, missing or unreachable)"
                )
            self.results.append(
                CheckResult(
                    name="assertion",
                    level=2,
                    status=status,
                    database=database,
                    object=assertion.name,
                    message=message,
                    evidence={"expect": assertion.expect.text},
                )
            )


def _missing_table(rule: FreshnessRule, checked: set[str]) -> CheckResult:
    where = f"database {rule.database!r}" if rule.database else "any checked database"
    status = CheckStatus.FAIL
    if rule.database is not None and rule.database not in checked:
        status = CheckStatus.ERROR
        where += " (not checked: excluded, missing or unreachable)"
    return CheckResult(
        name="freshness",
        level=2,
        status=status,
        database=rule.database,
        object=rule.label,
        message=f"table {rule.schema_name}.{rule.table} not found in {where}",
        evidence={"schema": rule.schema_name, "table": rule.table, "column": rule.column},
    )


def run_check_suite(
    target: ConnectionTarget,
    policy: DrillPolicy,
    *,
    baseline: Baseline | None = None,
    snapshot_time: datetime | None = None,
    vcpus: int | None = None,
    install_amcheck: bool = True,
) -> CheckSuiteResult:
    """Run every check up to ``policy.level`` against ``target``.

    ``baseline`` is the last passing drill's (``CheckSuiteResult.baseline``); ``snapshot_time``
    is when the snapshot was taken (freshness is measured against it; default: the server's
    ``now()``); ``vcpus`` sizes the connection pool when the policy does not.
    ``install_amcheck``: create the amcheck extension when a database lacks it (the drill's
    throwaway instance: yes; ``restoredrill check`` against someone's server: only when asked).
    Never raises for database problems: a refused connection gives verdict ERROR.
    """
    suite = _Suite(target, policy, baseline, snapshot_time, vcpus, install_amcheck)
    return _run(suite)


def plan_check_suite(
    target: ConnectionTarget,
    policy: DrillPolicy,
    *,
    baseline: Baseline | None = None,
    snapshot_time: datetime | None = None,
    vcpus: int | None = None,
    install_amcheck: bool = True,
) -> tuple[CheckSuiteResult, list[DatabasePlan]]:
    """Every check of ``policy.level`` except the row counts and amcheck's verifications, which
    are planned instead (one :class:`DatabasePlan` per database checked) to be run in rounds.
    The result's baseline has no row counts yet: the rounds add them."""
    suite = _Suite(target, policy, baseline, snapshot_time, vcpus, install_amcheck, planning=True)
    return _run(suite), suite.plans


def _run(suite: _Suite) -> CheckSuiteResult:
    started_at = _now()
    wall = time.perf_counter()
    cpu = time.process_time()
    checks, new_baseline = suite.run()
    verdict = verdict_of(checks)
    if not any(
        c.name == "connect" and c.level == 0 and c.status is CheckStatus.PASS for c in checks
    ):
        verdict = SuiteVerdict.ERROR
    finished_at = _now()
    return CheckSuiteResult(
        verdict=verdict,
        checks=checks,
        started_at=started_at,
        finished_at=finished_at,
        duration_ms=(time.perf_counter() - wall) * 1000,
        server_version=suite.server_version,
        baseline=new_baseline,
        level=suite.policy.level,
        complete=not any(c.status is CheckStatus.SKIPPED for c in checks),
        summary=summarize(checks),
        python_cpu_ms=(time.process_time() - cpu) * 1000,
    )
