"""The argparse definitions of `demo`, `run`, `status`, `history`, `local`, `verify-chain` and
`report`.

Every invocation of `restoredrill` builds every command's parser, so this module imports only the
standard library, :mod:`restoredrill_cli.defaults` and :mod:`restoredrill_cli.target` (both
standard library only): each handler imports its command's implementation (boto3, rich, pydantic
models, jinja2, the local cloud) when it runs. `restoredrill --help` then starts in a few tens
of milliseconds, and the operator commands never import the local cloud, which needs the optional
``[local]`` extra (moto).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import textwrap
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from restoredrill_cli.defaults import (
    DEFAULT_POLICY_FILE,
    DEFAULT_POLL_SECONDS,
    DEFAULT_SAVE_DIR,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WINDOW_DAYS,
    LOCAL_SOURCE_DB,
)
from restoredrill_cli.target import (
    DEFAULT_STATE_FILE,
    CliError,
    add_target_arguments,
    guarded,
)

# How an operator who installed the CLI alone adds the local cloud (as the README says, in Deploy).
LOCAL_EXTRA_INSTALL = (
    "pipx install --force '.[local]' (or pip install '.[local]') in the project directory"
)


class LocalExtraMissing(CliError):
    """The command needs the local cloud, and the ``[local]`` extra is not installed."""


@contextlib.contextmanager
def local_extra_required(command: str) -> Iterator[None]:
    """Imports made inside this block belong to the local cloud: a missing module means the
    ``[local]`` extra is not installed, which the operator is told how to fix in one line."""
    try:
        yield
    except ModuleNotFoundError as error:
        raise LocalExtraMissing(
            f"`restoredrill {command}` needs the local cloud, which is not installed "
            f"(no module named {error.name!r}): add the [local] extra: {LOCAL_EXTRA_INSTALL}"
        ) from None


def implementation_loaded() -> None:
    """The command's modules are imported: garbage is collected again from here on, leaving out
    everything start-up built (see :func:`restoredrill_cli.main.console_script`, which turned
    collection off; when it did not, as in a caller's own process, this changes nothing)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def require_known_fault(name: str | None, known: Sequence[str]) -> None:
    if name is not None and name not in known:
        raise CliError(f"unknown fault {name!r} (choose from {', '.join(sorted(known))})")


# ------------------------------------------------------------------------------ demo, local


def register_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run one complete drill locally (no AWS account needed)",
        description="Runs one complete restore drill on this machine: a source PostgreSQL with a "
        "clinic's data, an automated snapshot, the RDS event, then the real handlers through the "
        "local cloud (moto + real PostgreSQL). Exit 0 only when the drill PASSED: some faults "
        "still pass (the drill copes), others end FAILED, ERROR or TIMED_OUT by design. Needs "
        "the [local] extra.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument(
        "-h", "--help", action=HelpListingFaults, help="show this help message and exit"
    )
    parser.add_argument(
        "--fault",
        metavar="NAME",
        help="inject a fault (listed below, each with the verdict the drill must end with)",
    )
    parser.add_argument(
        "--aurora",
        action="store_true",
        help="drill an Aurora PostgreSQL cluster (RDS-EVENT-0169): the cluster is restored, an "
        "instance created into it, both torn down; --fault then names an Aurora fault",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead")
    parser.add_argument("--patients", type=int, default=2000, help="size of the demo data")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for the drill")
    parser.add_argument(
        "--save-dir",
        type=Path,
        default=DEFAULT_SAVE_DIR,
        metavar="DIR",
        help=f"keep a copy of the drill's JSON and HTML reports here (default {DEFAULT_SAVE_DIR}; "
        "the local cloud's bucket goes away with it)",
    )
    parser.set_defaults(func=guarded(_demo))


def register_local(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run the local cloud for the operator commands (--local)",
        description="Starts the local cloud (moto + the real handlers + real PostgreSQL) with "
        f"the opted-in source database {LOCAL_SOURCE_DB} and one automated snapshot of it, "
        "writes the state file that `restoredrill run/status/history --local` read, and runs "
        "until Ctrl-C or SIGTERM. Needs the [local] extra.",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=DEFAULT_STATE_FILE,
        metavar="PATH",
        help=f"where to describe the running cloud (default {DEFAULT_STATE_FILE})",
    )
    parser.add_argument(
        "--fault",
        metavar="NAME",
        help="inject this fault into every drill requested (see `restoredrill demo --help`)",
    )
    parser.add_argument("--patients", type=int, default=2000, help="size of the clinic's data")
    parser.set_defaults(func=guarded(_local))


class HelpListingFaults(argparse.Action):
    """`demo --help`, with the local cloud's faults listed after the options.

    The faults are defined by the local cloud, which imports moto: they are read only when this
    help is asked for, so that no other command pays for (or needs) the ``[local]`` extra.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(
            option_strings=option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help=help,
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        parser.epilog = faults_epilog()
        parser.print_help()
        parser.exit()


def faults_epilog() -> str:
    try:
        from localcloud.cloud import AURORA_FAULTS, FAULTS
    except ModuleNotFoundError:
        return (
            "faults (--fault NAME): the local cloud is not installed; to run the demo, "
            f"install the [local] extra: {LOCAL_EXTRA_INSTALL}"
        )
    lines = ["faults (--fault NAME):"]
    for title, faults in (("", FAULTS), ("with --aurora:", AURORA_FAULTS)):
        if title:
            lines.append(title)
        for fault in faults.values():
            lines.append(f"  {fault.name}")
            lines += textwrap.wrap(
                fault.summary,
                width=88,
                initial_indent="      ",
                subsequent_indent="      ",
                break_on_hyphens=False,
            )
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    with local_extra_required("demo"):
        from localcloud.cloud import AURORA_FAULTS, FAULTS
        from restoredrill_cli.demo import run_demo
    implementation_loaded()
    require_known_fault(args.fault, list(AURORA_FAULTS if args.aurora else FAULTS))
    return run_demo(args)


def _local(args: argparse.Namespace) -> int:
    with local_extra_required("local"):
        from localcloud.cloud import FAULTS
        from restoredrill_cli.local_cmd import local_command
    implementation_loaded()
    require_known_fault(args.fault, list(FAULTS))
    return local_command(args)


# ---------------------------------------------------------------------- run, status, history


def register_operate(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run",
        help="request a drill of a database now (Drill Requested)",
        description="Publishes Drill Requested for DB on the stack's bus and prints the run id. "
        "With --wait, follows the drill to its verdict: exit 0 when it PASSED, 1 for another "
        "verdict, 2 when it could not be requested or did not finish within --timeout.",
    )
    run.add_argument("db", metavar="DB", help="the source RDS DB instance identifier")
    backup = run.add_mutually_exclusive_group()
    backup.add_argument(
        "--snapshot",
        metavar="ID",
        help="the snapshot to restore (default: the database's latest automated snapshot)",
    )
    backup.add_argument(
        "--point-in-time",
        action="store_true",
        help="restore the DB instance to its latest restorable time (backups and transaction "
        "logs) instead of a snapshot; the report gives the RPO from the newest data found",
    )
    run.add_argument("--wait", action="store_true", help="follow the drill until it finishes")
    run.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"with --wait, give up waiting after this long (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    run.add_argument(
        "--poll-interval",
        type=positive_seconds,
        default=DEFAULT_POLL_SECONDS,
        metavar="SECONDS",
        help=f"with --wait, how often to read the run (default {DEFAULT_POLL_SECONDS:g})",
    )
    run.add_argument(
        "--requested-by",
        metavar="WHO",
        help="who asks, for the report (default: the ARN of your AWS credentials)",
    )
    _output_arguments(run)
    add_target_arguments(run)
    run.set_defaults(func=guarded(_run))

    status = subparsers.add_parser(
        "status",
        help="active drills and the recently finished ones",
        description="Lists the drills under way (state, age, deadline) and the most recently "
        "finished ones (verdict, RTO) of every stack named (--config-env may be repeated).",
    )
    status.add_argument(
        "--limit", type=positive_int, default=10, help="finished drills to show (default 10)"
    )
    _output_arguments(status)
    add_target_arguments(status)
    status.set_defaults(func=guarded(_status))

    history = subparsers.add_parser(
        "history",
        help="one database's drills, newest first",
        description="Lists the drills of DB, newest first: verdict, restore time (RTO), total "
        "time, failed checks and the report's key.",
    )
    history.add_argument("db", metavar="DB", help="the source RDS DB instance identifier")
    history.add_argument(
        "--limit", type=positive_int, default=20, help="drills to show (default 20)"
    )
    _output_arguments(history)
    add_target_arguments(history)
    history.set_defaults(func=guarded(_history))


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    output.add_argument(
        "--plain", action="store_true", help="plain text even on a terminal (no colours)"
    )


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _run(args: argparse.Namespace) -> int:
    from restoredrill_cli.operate import run_command

    implementation_loaded()
    return run_command(args)


def _status(args: argparse.Namespace) -> int:
    from restoredrill_cli.operate import status_command

    implementation_loaded()
    return status_command(args)


def _history(args: argparse.Namespace) -> int:
    from restoredrill_cli.operate import history_command

    implementation_loaded()
    return history_command(args)


# ------------------------------------------------------------------------------ the evidence


def register_evidence(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = subparsers.add_parser(
        "verify-chain",
        help="check that no stored report of a database was edited, removed or added",
        description="Recomputes the SHA-256 of every stored report of DB (in the stack's "
        "region), follows the link each report carries to the previous one, and compares the "
        "digests the run table recorded when each report was published. Exit 0 when the chain "
        "is intact, 1 when it is broken, 2 when it could not be read.",
    )
    verify.add_argument("db", metavar="DB", help="the source database's DB instance identifier")
    verify.add_argument("--json", action="store_true", help="print the verification as JSON")
    add_target_arguments(verify)
    verify.set_defaults(func=guarded(_verify_chain))

    report = subparsers.add_parser(
        "report",
        help="compliance summary of every opted-in database (html, md or json)",
        description="For every opted-in database of the stacks named (repeat --config-env for "
        "several regions): drills run since DATE, pass rate, last drill and last passing drill, "
        "RTO and RPO trends, and coverage: databases not drilled within the policy's "
        "max_hours_between_drills, or never, are called out.",
    )
    report.add_argument(
        "--since",
        type=since_date,
        metavar="DATE",
        help=f"start of the window, YYYY-MM-DD or an ISO time (default: {DEFAULT_WINDOW_DAYS} "
        "days ago)",
    )
    report.add_argument("--format", choices=("html", "md", "json"), default="md")
    report.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here, not stdout")
    report.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help=f"drill policy for each database's max_hours_between_drills (default "
        f"{DEFAULT_POLICY_FILE} when present; a database's newest report's policy wins)",
    )
    add_target_arguments(report)
    report.set_defaults(func=guarded(_report))


def since_date(text: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date: {text!r} (YYYY-MM-DD or an ISO time)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _verify_chain(args: argparse.Namespace) -> int:
    from restoredrill_cli.evidence_cmd import run_verify_chain

    implementation_loaded()
    return run_verify_chain(args)


def _report(args: argparse.Namespace) -> int:
    from restoredrill_cli.evidence_cmd import run_report

    implementation_loaded()
    return run_report(args)
