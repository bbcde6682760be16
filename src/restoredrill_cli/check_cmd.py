"""``restoredrill check`` and ``restoredrill policy validate``.

``restoredrill check --dsn postgresql://user:pass@host:port/db --level N [--policy FILE]
[--baseline REPORT.json] [--json]`` runs the drill's check suite against any reachable
PostgreSQL. Exit status: 0 when no check failed, 1 when one failed, 2 when it could not check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2

SSL_MODES = {
    "disable": "disable",
    "require": "require",
    "prefer": "require",
    "allow": "require",
    "verify-ca": "verify-full",
    "verify-full": "verify-full",
}


class UsageError(Exception):
    """A bad option value: reported on stderr with exit status 2."""


def parse_dsn(dsn: str, *, ssl: str | None = None, ca_bundle: str | None = None) -> Any:
    """A :class:`ConnectionTarget` from ``postgresql://user:password@host:port/database
    ?sslmode=...`` (the password may instead come from ``PGPASSWORD``)."""
    from pydantic import SecretStr
    from restoredrill.checksuite import ConnectionTarget

    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise UsageError(
            "--dsn must start with postgresql:// (postgresql://user:pass@host:port/db)"
        )
    if not parts.hostname:
        raise UsageError("--dsn needs a host: postgresql://user:pass@host:port/db")
    user = unquote(parts.username or "") or os.environ.get("PGUSER", "")
    if not user:
        raise UsageError("--dsn needs a user: postgresql://user:pass@host:port/db")
    password = unquote(parts.password) if parts.password is not None else None
    if password is None:
        password = os.environ.get("PGPASSWORD", "")
    try:
        port = parts.port or 5432
    except ValueError:
        raise UsageError("--dsn has an invalid port") from None
    database = unquote(parts.path.lstrip("/")) or "postgres"
    query = parse_qs(parts.query)
    mode = ssl or (query.get("sslmode") or ["require"])[-1]
    if mode not in SSL_MODES:
        raise UsageError(f"unsupported sslmode {mode!r}: use disable, require or verify-full")
    pem = None
    root_certs = query.get("sslrootcert") or []
    ca_file = ca_bundle or (root_certs[-1] if root_certs else None)
    if ca_file:
        try:
            pem = Path(ca_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the CA bundle {ca_file}: {exc}") from None
    return ConnectionTarget(
        host=parts.hostname,
        port=port,
        user=user,
        password=SecretStr(password),
        database=database,
        ssl=SSL_MODES[mode],
        ca_bundle_pem=pem,
    )


def load_baseline_file(path: str) -> Any:
    """The baseline inside a saved ``--json`` result, a drill report, or a bare baseline."""
    from restoredrill.ports.baseline import find_baseline

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the baseline {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"the baseline {path} is not JSON: {exc}") from None
    baseline = find_baseline(document)
    if baseline is None:
        raise UsageError(
            f"no baseline found in {path}: pass a `restoredrill check --json` output or a drill "
            'report (it holds a "baseline" object)'
        )
    return baseline


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check",
        help="run the check suite against any reachable PostgreSQL",
        description=(
            "Run restoredrill's check suite (level 0 connect, 1 catalog, 2 data, 3 physical) "
            "against a PostgreSQL server, e.g. after a manual restore. Exit status: 0 no check "
            "failed, 1 a check failed, 2 could not check."
        ),
    )
    check.add_argument(
        "--dsn",
        required=True,
        help="postgresql://user:password@host:port/database[?sslmode=require|verify-full|disable]"
        " (or the password in PGPASSWORD)",
    )
    check.add_argument("--level", type=int, choices=range(4), help="0-3 (default: the policy's, 3)")
    check.add_argument("--policy", metavar="FILE", help="a policy file (YAML)")
    check.add_argument(
        "--policy-db",
        metavar="ID",
        help="which database entry of the policy file to use (default: its defaults)",
    )
    check.add_argument(
        "--baseline",
        metavar="REPORT.json",
        help="compare with this baseline: a saved --json output or a drill report",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.add_argument("--jobs", type=_positive_int, help="parallel connections (default: 2)")
    check.add_argument(
        "--install-amcheck",
        action="store_true",
        help="create the amcheck extension where it is missing (level 3); without it, level 3 is "
        "skipped in databases that lack amcheck",
    )
    check.add_argument(
        "--snapshot-time",
        type=_parse_time,
        metavar="ISO8601",
        help="when the data was snapshotted: freshness is measured against it (default: now)",
    )
    check.add_argument("--time-budget", metavar="DURATION", help="e.g. 10m (default: policy's)")
    check.add_argument("--ssl", choices=sorted(SSL_MODES), help="overrides the DSN's sslmode")
    check.add_argument("--ca-bundle", metavar="PEM", help="CA bundle for sslmode=verify-full")
    check.set_defaults(func=run_check)

    policy = subparsers.add_parser("policy", help="work with drill policy files")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    validate = policy_sub.add_parser(
        "validate",
        help="check a policy file before deploying it",
        description="Validate a drill policy file. Exit status 0 when valid, 1 when not.",
    )
    validate.add_argument("file", help="the policy file (YAML)")
    validate.set_defaults(func=run_policy_validate)


def _policy_for(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError
    from restoredrill.ports.policy import DrillPolicy, PolicyError, load_policy_file, parse_duration

    if args.policy:
        try:
            document = load_policy_file(args.policy)
        except PolicyError as exc:
            raise UsageError(f"invalid policy:\n{exc}") from None
        if args.policy_db and args.policy_db not in document.databases:
            raise UsageError(f"the policy file has no entry for {args.policy_db!r}")
        policy = document.for_database(args.policy_db) if args.policy_db else document.defaults
    else:
        policy = DrillPolicy()
    update: dict[str, Any] = {}
    if args.level is not None:
        update["level"] = args.level
    if args.jobs is not None:
        update["parallelism"] = args.jobs
    if args.time_budget is not None:
        try:
            update["time_budget"] = parse_duration(args.time_budget)
        except ValueError as exc:
            raise UsageError(f"--time-budget: {exc}") from None
    if update:
        try:
            policy = DrillPolicy.model_validate(policy.model_dump(by_alias=True) | update)
        except ValidationError as exc:
            raise UsageError(str(exc)) from None
    return policy


def run_check(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from restoredrill.checksuite import SuiteVerdict, run_check_suite

    from restoredrill_cli.commands import implementation_loaded

    implementation_loaded()
    try:
        target = parse_dsn(args.dsn, ssl=args.ssl, ca_bundle=args.ca_bundle)
        policy = _policy_for(args)
        baseline = load_baseline_file(args.baseline) if args.baseline else None
    except UsageError as exc:
        print(f"restoredrill check: {exc}", file=err)
        return EXIT_ERROR
    result = run_check_suite(
        target,
        policy,
        baseline=baseline,
        snapshot_time=args.snapshot_time,
        install_amcheck=args.install_amcheck,
    )
    if args.json:
        out.write(result.model_dump_json(indent=2) + "\n")
    else:
        out.write(render_table(result) + "\n")
    if result.verdict is SuiteVerdict.FAILED:
        return EXIT_FAILED
    if result.verdict is SuiteVerdict.ERROR:
        return EXIT_ERROR
    return EXIT_OK


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(result: Any) -> str:
    """The suite as a readable table: level, check, where, status, time, message."""
    rows = [("LVL", "CHECK", "WHERE", "STATUS", "MS", "MESSAGE")]
    for check in result.checks:
        where = "/".join(p for p in (check.database, check.object) if p) or "-"
        rows.append(
            (
                str(check.level),
                check.name,
                _clip(where, 32),
                check.status.value.upper(),
                f"{check.duration_ms:.0f}",
                _clip(check.message, 110),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    ]
    summary = ", ".join(f"{n} {status}" for status, n in result.summary.items() if n)
    lines.append("")
    lines.append(
        f"verdict: {result.verdict.value}  ({summary}; {result.duration_ms / 1000:.2f} s"
        f"{', server ' + result.server_version if result.server_version else ''})"
    )
    if not result.complete:
        lines.append("note: some checks were skipped (time budget or missing amcheck)")
    return "\n".join(lines)


def run_policy_validate(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    from restoredrill.ports.policy import PolicyError, load_policy_file

    from restoredrill_cli.commands import implementation_loaded

    implementation_loaded()
    try:
        document = load_policy_file(args.file)
    except PolicyError as exc:
        print(f"{args.file}: invalid policy ({len(exc.issues)} problem(s))", file=err)
        for issue in exc.issues:
            print(f"  {issue}", file=err)
        return 1
    names = ", ".join(sorted(document.databases)) or "none"
    print(
        f"{args.file}: valid (defaults: level {document.defaults.level}; "
        f"{len(document.databases)} database policy(ies): {names})",
        file=out,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``check`` / ``policy validate`` without the rest of the CLI
    (``python -m restoredrill_cli.check_cmd check --dsn ...``)."""
    parser = argparse.ArgumentParser(prog="restoredrill")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
