"""The soak: many drills through one local cloud, faults drawn at random, every promise checked.

    python -m drillharness.soak --drills 200 --seed 1      (or: make soak)

Each drill is a DB instance drill or, with probability ``--clusters`` (a third by default), an
Aurora cluster drill; it gets a fault drawn (seeded) from its kind's fault matrix (Aurora faults
are shown as ``aurora:NAME``) or none, is started from a fresh automated snapshot of one of a few
source databases (or of the source cluster), and runs alongside up to ``--parallel`` others.
When it finishes, every invariant of :mod:`drillharness.invariants` is checked for it; at the
end, duplicates are counted again, the dead-letter queues are checked, the cloud is stopped and
nothing of it may be left running. The table shows, per fault, the verdicts reached, the
invariant violations and the time a drill took; then the CPU time per drill (this process and
all its descendants, PostgreSQL servers included) and the wall time.

It is a benchmark-style run, not part of ``make test``. Exit 0 when no invariant was violated.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import random
import resource
import shlex
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from restoredrill.ports.records import Verdict

from drillharness.invariants import (
    Violation,
    check_admission_cap,
    check_dead_letters,
    check_drill,
    check_nothing_running,
    check_report_chains,
    max_admitted_at_once,
)
from localcloud.cloud import AURORA_FAULTS, AURORA_SOURCE, FAULTS, NO_FAULT, Fault, LocalCloud

PR_SET_CHILD_SUBREAPER = 36
VERDICTS = [v.value for v in Verdict]
# A drill not finished this long after it started is reported as such (its deadline is 1.5 min
# from its admission; with the cap below the parallelism it may first wait for a slot).
DRILL_TIMEOUT_SECONDS = 600.0
AURORA_PREFIX = "aurora:"  # an Aurora cluster drill's fault, as the table and --faults name it


@dataclass
class Drill:
    index: int
    fault: str
    source: str
    run_id: str = ""
    started: float = 0.0
    finished: float | None = None
    verdict: str | None = None
    violations: list[Violation] = field(default_factory=list)
    checked: bool = False

    @property
    def aurora(self) -> bool:
        return self.fault.startswith(AURORA_PREFIX)

    @property
    def fault_name(self) -> str:
        return self.fault.removeprefix(AURORA_PREFIX)


def fault_of(name: str) -> Fault:
    """The fault a soak name stands for (``aurora:NAME`` for an Aurora cluster drill's)."""
    if name.removeprefix(AURORA_PREFIX) == NO_FAULT.name:
        return NO_FAULT
    if name.startswith(AURORA_PREFIX):
        return AURORA_FAULTS[name.removeprefix(AURORA_PREFIX)]
    return FAULTS[name]


def all_fault_names() -> list[str]:
    instance = [NO_FAULT.name, *FAULTS]
    return instance + [f"{AURORA_PREFIX}{name}" for name in [NO_FAULT.name, *AURORA_FAULTS]]


# ----------------------------------------------------------------------------------- CPU time


def _become_subreaper() -> bool:
    """PostgreSQL's postmaster daemonizes (pg_ctl exits): as a child subreaper this process
    becomes its parent, reaps it, and so its CPU time (and its backends') is counted."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _proc_stat(pid: int) -> tuple[int, str, str, list[str]] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), comm, rest[0], rest  # ppid, comm, state, fields from field 3 on


_postgres_cpu = [0.0]  # CPU seconds of the PostgreSQL servers reaped (with their backends)


def _reap_postmasters() -> None:
    """Reap our zombie children that are PostgreSQL servers (no one else waits for them)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat and stat[0] == me and stat[2] == "Z" and stat[1] == "postgres":
            with contextlib.suppress(ChildProcessError):
                pid, _, usage = os.wait4(int(entry), os.WNOHANG)
                if pid:
                    _postgres_cpu[0] += usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    stat = _proc_stat(pid)
    if stat is None or stat[2] == "Z":
        return 0.0
    return sum(int(value) for value in stat[3][11:15]) / os.sysconf("SC_CLK_TCK")


def _live_descendants_cpu() -> float:
    """CPU seconds of live descendants (and of the children they reaped)."""
    me = os.getpid()
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid, (ppid, _, state, rest) in stats.items():
        if state == "Z":
            continue
        ancestor, hops = ppid, 0
        while ancestor not in (0, 1, me) and ancestor in stats and hops < 64:
            ancestor, hops = stats[ancestor][0], hops + 1
        if ancestor == me and pid != me:
            # utime, stime, cutime, cstime are fields 14-17 (rest starts at field 3)
            total += sum(int(value) for value in rest[11:15]) / ticks
    return total


def _slowest_invocations(cloud: LocalCloud) -> dict[str, float]:
    """The longest invocation (seconds, from its REPORT line) of each function."""
    assert cloud.aws is not None
    slowest = {}
    for logical_id in cloud.aws.stack.functions:
        durations = [
            float(line.split("\tDuration: ", 1)[1].split(" ", 1)[0]) / 1000
            for line in cloud.aws.log_text(logical_id).splitlines()
            if line.startswith("REPORT RequestId:") and "\tDuration: " in line
        ]
        if durations:
            slowest[logical_id.removesuffix("Function")] = max(durations)
    return slowest


def cpu_seconds() -> float:
    """This process, its reaped children, and its live descendants, in CPU seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return reaped + _live_descendants_cpu()


# ----------------------------------------------------------------------------------- the soak


class Soak:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        names = all_fault_names() if not args.faults else args.faults.split(",")
        instance_faults = [n for n in names if not n.startswith(AURORA_PREFIX)]
        cluster_faults = [n for n in names if n.startswith(AURORA_PREFIX)]
        rng = random.Random(args.seed)  # noqa: S311 - a reproducible draw, not a secret
        self.sources = ["clinic-db"] + [f"clinic-db-{n}" for n in range(2, args.sources + 1)]
        self.drills = []
        for i in range(args.drills):
            cluster = bool(cluster_faults) and (not instance_faults or rng.random() < args.clusters)
            fault = rng.choice(cluster_faults if cluster else instance_faults)
            source = AURORA_SOURCE if cluster else self.sources[i % len(self.sources)]
            self.drills.append(Drill(index=i, fault=fault, source=source))
        self.cloud_violations: list[Violation] = []
        self.slowest: dict[str, float] = {}
        self._lock = threading.Lock()
        self._done = 0

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def run(self) -> int:
        subreaper = _become_subreaper()
        stop_reaping = threading.Event()

        def reaper() -> None:
            while not stop_reaping.wait(0.5):
                _reap_postmasters()

        threading.Thread(target=reaper, name="soak-reaper", daemon=True).start()
        cpu_start, wall_start = cpu_seconds(), time.monotonic()
        cloud = LocalCloud(
            patients=self.args.patients,
            pool_size=self.args.pool,
            work_dir=Path(self.args.work_dir) if self.args.work_dir else None,
            parameter_overrides={"MaxConcurrentDrills": str(self.args.cap)},
        )
        try:
            cloud.start()
            for source in self.sources:
                cloud.create_source_database(source)
            if any(drill.aurora for drill in self.drills):
                cloud.create_source_cluster(AURORA_SOURCE)
            cpu_setup, wall_setup = cpu_seconds() - cpu_start, time.monotonic() - wall_start
            self.say(
                f"soak: {len(self.drills)} drills, seed {self.args.seed}, "
                f"{self.args.parallel} at a time, {len(self.sources)} source databases; "
                f"setup {wall_setup:.1f}s"
            )
            drills_start = time.monotonic()
            self._drive(cloud)
            wall_drills = time.monotonic() - drills_start
            self._final_checks(cloud)
            assert cloud.aws is not None
            workers_cpu = sum(map(_process_cpu, cloud.aws.runtime.started_pids))
            self.slowest = _slowest_invocations(cloud)
        finally:
            cloud.stop()
            _reap_postmasters()
        self.cloud_violations += check_nothing_running(cloud)
        stop_reaping.set()
        _reap_postmasters()
        cpu_total = cpu_seconds() - cpu_start
        wall_total = time.monotonic() - wall_start
        own = resource.getrusage(resource.RUSAGE_SELF)
        breakdown = {
            "this process (moto, delivery, local RDS, soak)": own.ru_utime + own.ru_stime,
            "Lambda workers (alive at the end)": workers_cpu,
            "PostgreSQL servers": _postgres_cpu[0],
        }
        breakdown["tools (cp, pg_ctl, runuser, pg_basebackup, crashed workers)"] = max(
            0.0, cpu_total - sum(breakdown.values())
        )
        self._report(cpu_total, cpu_setup, wall_total, wall_drills, subreaper, breakdown)
        broken = sum(len(d.violations) for d in self.drills) + len(self.cloud_violations)
        return 0 if broken == 0 else 1

    def _drive(self, cloud: LocalCloud) -> None:
        pending = list(self.drills)
        in_flight: list[Drill] = []
        checks: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="soak-check") as pool:
            while pending or in_flight:
                while pending and len(in_flight) < self.args.parallel:
                    drill = pending.pop(0)
                    drill.started = time.monotonic()
                    drill.run_id = (
                        cloud.start_cluster_drill(drill.source, fault_of(drill.fault))
                        if drill.aurora
                        else cloud.start_drill(drill.source, drill.fault)
                    )
                    in_flight.append(drill)
                runs = cloud.runs([drill.run_id for drill in in_flight])
                for drill in list(in_flight):
                    run = runs.get(drill.run_id)
                    overdue = time.monotonic() - drill.started > DRILL_TIMEOUT_SECONDS
                    if (run is not None and run.is_finished) or overdue:
                        drill.finished = time.monotonic()
                        in_flight.remove(drill)
                        checks.append(pool.submit(self._check, cloud, drill))
                time.sleep(0.5)
            for check in checks:
                check.result()

    def _check(self, cloud: LocalCloud, drill: Drill) -> None:
        try:
            drill.violations = check_drill(
                cloud, drill.run_id, cloud.fault_of(drill.run_id).verdict
            )
            run = cloud.run(drill.run_id)
            drill.verdict = run.verdict.value if run is not None and run.verdict else None
            cloud.forget_snapshot(drill.run_id)
        except Exception as error:  # a check that cannot run is a violation, not a crash
            drill.violations.append(Violation("check", f"{type(error).__name__}: {error}"))
        drill.checked = True
        with self._lock:
            self._done += 1
            done = self._done
        assert drill.finished is not None
        seconds = drill.finished - drill.started
        mark = "ok" if not drill.violations else "; ".join(map(str, drill.violations))
        self.say(
            f"  [{done:3d}/{len(self.drills)}] {drill.fault:<34} {drill.verdict or '-':<9} "
            f"{seconds:5.1f}s  {mark}"
        )

    def _final_checks(self, cloud: LocalCloud) -> None:
        """Late duplicates: every run still has exactly one Drill Finished and one message."""
        time.sleep(3)
        for drill in self.drills:
            events = len(cloud.drill_finished_events(drill.run_id))
            messages = len(cloud.slack_messages_for(drill.run_id))
            known = {v.invariant for v in drill.violations}
            if events != 1 and "one Drill Finished" not in known:
                drill.violations.append(Violation("one Drill Finished", f"{events} at the end"))
            if messages != 1 and "one Slack message" not in known:
                drill.violations.append(Violation("one Slack message", f"{messages} at the end"))
        self.cloud_violations += check_dead_letters(cloud)
        self.cloud_violations += check_report_chains(cloud)
        self.cloud_violations += check_admission_cap(cloud, self.args.cap)
        assert cloud.rds is not None
        self.say(
            f"admission: cap {self.args.cap} with {self.args.parallel} in flight; at most "
            f"{max_admitted_at_once(cloud.all_runs())} drills admitted at once, at most "
            f"{cloud.rds.restored_peak} restored instances at once"
        )

    # ------------------------------------------------------------------------------- report

    def _report(
        self,
        cpu_total: float,
        cpu_setup: float,
        wall_total: float,
        wall_drills: float,
        subreaper: bool,
        breakdown: dict[str, float],
    ) -> None:
        by_fault: dict[str, list[Drill]] = defaultdict(list)
        for drill in self.drills:
            by_fault[drill.fault].append(drill)
        order = all_fault_names()
        header = (
            f"{'fault':<34} {'drills':>6} {'expected':>9}  "
            + " ".join(f"{v:>9}" for v in VERDICTS)
            + f" {'unfinished':>10} {'violations':>10} {'s/drill':>8}"
        )
        lines = [header, "-" * len(header)]
        totals: Counter[str] = Counter()
        for name in [n for n in order if n in by_fault]:
            drills = by_fault[name]
            verdicts = Counter(d.verdict or "unfinished" for d in drills)
            violations = sum(len(d.violations) for d in drills)
            seconds = [d.finished - d.started for d in drills if d.finished is not None]
            expected = fault_of(name).verdict.value
            totals.update(verdicts)
            totals["drills"] += len(drills)
            totals["violations"] += violations
            lines.append(
                f"{name:<34} {len(drills):>6} {expected:>9}  "
                + " ".join(f"{verdicts.get(v, 0):>9}" for v in VERDICTS)
                + f" {verdicts.get('unfinished', 0):>10} {violations:>10}"
                + f" {sum(seconds) / max(len(seconds), 1):>8.1f}"
            )
        lines.append("-" * len(header))
        lines.append(
            f"{'total':<34} {totals['drills']:>6} {'':>9}  "
            + " ".join(f"{totals.get(v, 0):>9}" for v in VERDICTS)
            + f" {totals.get('unfinished', 0):>10} {totals['violations']:>10}"
        )
        kinds = Counter(v.invariant for d in self.drills for v in d.violations)
        count = max(len(self.drills), 1)
        lines += [
            "",
            "invariant violations by kind: "
            + (", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())) or "none"),
            "cloud invariants (only poison in DLQs, reports chained, never more than the "
            "cap running, nothing running after stop): "
            + ("; ".join(map(str, self.cloud_violations)) or "kept"),
            f"CPU time: {cpu_total:.1f}s in all = {cpu_total / count:.2f}s per drill "
            f"({(cpu_total - cpu_setup) / count:.2f}s per drill without the "
            f"{cpu_setup:.1f}s of setup); this process and its descendants"
            + ("" if subreaper else " (PostgreSQL servers not counted: no subreaper)"),
            "  " + "; ".join(f"{name}: {seconds:.1f}s" for name, seconds in breakdown.items()),
            f"wall time: {wall_total:.1f}s in all, {wall_drills:.1f}s for the drills "
            f"({wall_drills / count:.2f}s per drill, {self.args.parallel} at a time); "
            f"{os.cpu_count()} CPUs",
            "slowest invocation per function: "
            + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.slowest.items()),
            "command: python -m drillharness.soak " + shlex.join(_argv(self.args)),
        ]
        print("\n".join(lines), file=self.out, flush=True)


def _argv(args: argparse.Namespace) -> list[str]:
    argv = ["--drills", str(args.drills), "--seed", str(args.seed)]
    argv += ["--parallel", str(args.parallel), "--sources", str(args.sources)]
    argv += ["--patients", str(args.patients), "--pool", str(args.pool)]
    argv += ["--cap", str(args.cap), "--clusters", f"{args.clusters:g}"]
    if args.faults:
        argv += ["--faults", args.faults]
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m drillharness.soak",
        description="Many drills through one local cloud with random faults; every invariant "
        "checked for every drill. Exit 0 when none was violated.",
    )
    parser.add_argument("--drills", type=int, default=200, help="how many drills (200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault draw (1)")
    parser.add_argument("--parallel", type=int, default=12, help="drills in flight at once (12)")
    parser.add_argument("--sources", type=int, default=3, help="source databases (3)")
    parser.add_argument(
        "--cap",
        type=int,
        default=4,
        help="MaxConcurrentDrills of the stack, below --parallel so drills queue (4)",
    )
    parser.add_argument(
        "--clusters",
        type=float,
        default=1 / 3,
        help="share of the drills that are Aurora cluster drills (a third)",
    )
    parser.add_argument("--patients", type=int, default=300, help="size of each source (300)")
    parser.add_argument("--pool", type=int, default=6, help="warm workers per function (6)")
    parser.add_argument(
        "--work-dir", help="keep the local cloud's files (every function's log) in this directory"
    )
    parser.add_argument(
        "--faults",
        help="comma-separated faults to draw from (default: every fault and none, of both "
        f"kinds); known: {', '.join(all_fault_names())}",
    )
    return parser


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    if args.faults:
        unknown = set(args.faults.split(",")) - set(all_fault_names())
        if unknown:
            raise SystemExit(f"unknown faults: {', '.join(sorted(unknown))}")
    return Soak(args, out).run()


if __name__ == "__main__":
    sys.exit(main())
