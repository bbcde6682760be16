"""The `restoredrill` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restoredrill",
        description="Prove that RDS PostgreSQL snapshots restore and that their data is intact.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Imported here so that `restoredrill --help` stays fast and each command loads only its own.
    from restoredrill_cli import check_cmd, demo, evidence_cmd, local_cmd, operate

    demo.register(subparsers)
    check_cmd.register(subparsers)
    operate.register(subparsers)
    local_cmd.register(subparsers)
    evidence_cmd.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
