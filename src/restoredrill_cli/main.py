"""The `restoredrill` command."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restoredrill",
        description="Prove that RDS PostgreSQL snapshots restore and that their data is intact.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Registration imports argparse definitions only: each command's implementation (boto3,
    # rich, pydantic, the local cloud) is imported by its handler, when that command runs.
    from restoredrill_cli import check_cmd, commands

    commands.register_demo(subparsers)
    check_cmd.register(subparsers)
    commands.register_operate(subparsers)
    commands.register_local(subparsers)
    commands.register_evidence(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console_script() -> int:
    """`restoredrill` as installed (pyproject's [project.scripts]).

    A command's start-up (its parser, its modules, their pydantic schemas) builds only objects
    that live until the process ends, so the cyclic garbage collector, which would traverse them
    again and again, is off until the command's implementation is loaded
    (:func:`restoredrill_cli.commands.implementation_loaded`); at exit, what is left is frozen,
    so that the interpreter's shutdown does not traverse it either.
    """
    gc.disable()
    try:
        return main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    sys.exit(console_script())
