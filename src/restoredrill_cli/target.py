"""Which restoredrill stack the operator commands talk to: a deployed stack, found from
samconfig.toml (or flags) and CloudFormation, or the local cloud of `restoredrill local`.

Every command that works on a stack calls :func:`add_target_arguments` on its parser and
:func:`restoredrill_cli.resolve.resolve_targets` (or ``resolve_target`` when it needs exactly one)
on its arguments, then talks to each :class:`Target` through
:class:`restoredrill_cli.stack.StackClient`. A problem finding the stack is a
:class:`TargetError`: one readable line and exit status 2 (:func:`guarded`), never a traceback.

Standard library only: every invocation of `restoredrill` imports it while building the parsers.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shlex
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_CLI_ERROR = 2
DEFAULT_SAMCONFIG = Path("samconfig.toml")
DEFAULT_CONFIG_ENV = "default"
DEFAULT_STATE_FILE = Path(".restoredrill/local.json")
# What the commands read from the stack; a stack without them is not a restoredrill stack.
REQUIRED_OUTPUTS = ("DrillBusName", "RunTableName", "ReportBucketName")
# template.yaml's defaults for the parameters the commands use (tests/unit/test_cli_target.py
# keeps them equal). DescribeStacks returns every parameter's value, defaults included; these
# only fill in for a target described without CloudFormation.
TEMPLATE_DEFAULTS = {"OptInTagKey": "restoredrill:drill", "OptInTagValue": "enabled"}
# A stack in any other state is being created, deleted or rolled back: its outputs may not exist.
USABLE_STACK_STATES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)


class CliError(Exception):
    """Something the operator must fix: reported as one line on stderr, exit status 2."""


class TargetError(CliError):
    """The stack could not be found or used (samconfig, CloudFormation, credentials)."""


@dataclass(frozen=True)
class Target:
    """One restoredrill stack: where it is and what it is made of.

    ``endpoint_url`` is set for the local cloud (every service but those in
    ``service_endpoints`` answers there); ``outputs`` are the stack's CloudFormation Outputs
    (DrillBusName, RunTableName, ReportBucketName, ...), ``parameters`` its parameter values.
    """

    name: str
    region: str
    stack_name: str
    endpoint_url: str | None = None
    profile: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    account_id: str | None = None
    service_endpoints: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None

    def output(self, name: str) -> str:
        value = self.outputs.get(name)
        if not value:
            raise TargetError(f"stack {self.stack_name} ({self.region}) has no output {name}")
        return value

    def parameter(self, name: str) -> str:
        value = self.parameters.get(name, TEMPLATE_DEFAULTS.get(name))
        if value is None:
            raise TargetError(f"stack {self.stack_name} ({self.region}) has no parameter {name}")
        return value

    @property
    def bus_name(self) -> str:
        return self.output("DrillBusName")

    @property
    def run_table(self) -> str:
        return self.output("RunTableName")

    @property
    def report_bucket(self) -> str:
        return self.output("ReportBucketName")

    @property
    def opt_in_tag(self) -> tuple[str, str]:
        return self.parameter("OptInTagKey"), self.parameter("OptInTagValue")

    def endpoint_for(self, service: str) -> str | None:
        return self.service_endpoints.get(service, self.endpoint_url)

    def report_uri(self, key: str) -> str:
        return f"s3://{self.report_bucket}/{key}"

    def describe(self) -> dict[str, Any]:
        """The JSON form (what a state file holds, and what :func:`target_from_description`
        reads back)."""
        return {
            "name": self.name,
            "region": self.region,
            "stack_name": self.stack_name,
            "endpoint_url": self.endpoint_url,
            "profile": self.profile,
            "account_id": self.account_id,
            "outputs": dict(self.outputs),
            "parameters": dict(self.parameters),
            "service_endpoints": dict(self.service_endpoints),
        }


# ---------------------------------------------------------------------------- arguments


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the stack, shared by every operator command."""
    group = parser.add_argument_group(
        "stack",
        "Which restoredrill stack to talk to: samconfig.toml's environment (default "
        "'default'), or --stack-name and --region, or the local cloud of `restoredrill local`.",
    )
    group.add_argument(
        "--config-env",
        action="append",
        metavar="NAME",
        help="samconfig.toml environment (repeat for several stacks, e.g. prod and prod-dr)",
    )
    group.add_argument(
        "--samconfig",
        type=Path,
        metavar="PATH",
        help=f"the samconfig file (default ./{DEFAULT_SAMCONFIG})",
    )
    group.add_argument("--stack-name", help="the stack's name (instead of samconfig.toml's)")
    group.add_argument("--region", help="the stack's region (instead of samconfig.toml's)")
    group.add_argument("--profile", help="AWS profile for the credentials")
    group.add_argument(
        "--local",
        nargs="?",
        const=DEFAULT_STATE_FILE,
        type=Path,
        metavar="STATE_FILE",
        help=f"the local cloud started by `restoredrill local` (default {DEFAULT_STATE_FILE}); "
        "being optional, its path must not be followed by the command's database argument",
    )


# ---------------------------------------------------------------------------- samconfig


@dataclass(frozen=True)
class SamConfigEnvironment:
    """What samconfig.toml says about one environment's deployed stack."""

    name: str
    stack_name: str | None
    region: str | None
    profile: str | None
    parameter_overrides: dict[str, str]


def read_samconfig(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetError(
            f"no {path}: run in the project directory, or give --samconfig PATH, "
            "or --stack-name and --region, or --local"
        ) from None
    except OSError as error:
        raise TargetError(f"cannot read {path}: {error.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TargetError(f"{path} is not valid TOML: {error}") from None


def samconfig_environment(config: Mapping[str, Any], env: str, path: Path) -> SamConfigEnvironment:
    """The environment ``env`` of a parsed samconfig.toml (deploy's values over global's, as
    `sam deploy` reads them)."""
    section = config.get(env)
    if not isinstance(section, Mapping):
        known = sorted(name for name, value in config.items() if isinstance(value, Mapping))
        raise TargetError(
            f"no environment {env!r} in {path} (environments: {', '.join(known) or 'none'})"
        )

    def parameters(command: str) -> Mapping[str, Any]:
        found = section.get(command, {})
        params = found.get("parameters", {}) if isinstance(found, Mapping) else {}
        return params if isinstance(params, Mapping) else {}

    deploy, common = parameters("deploy"), parameters("global")

    def value(key: str) -> str | None:
        found = deploy.get(key, common.get(key))
        return str(found) if found not in (None, "") else None

    overrides = deploy.get("parameter_overrides", common.get("parameter_overrides"))
    return SamConfigEnvironment(
        name=env,
        stack_name=value("stack_name"),
        region=value("region"),
        profile=value("profile"),
        parameter_overrides=parse_parameter_overrides(overrides),
    )


def parse_parameter_overrides(value: Any) -> dict[str, str]:
    """samconfig's parameter_overrides: a list of ``Key=Value`` strings, or one string of them
    separated by spaces (values may be quoted), or CloudFormation's
    ``ParameterKey=K,ParameterValue=V``."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            tokens = shlex.split(value)
        except ValueError as error:
            raise TargetError(f"unreadable parameter_overrides: {error}") from None
    elif isinstance(value, list):
        tokens = [str(item) for item in value]
    else:
        raise TargetError("parameter_overrides must be a string or a list of strings")
    parsed: dict[str, str] = {}
    for token in tokens:
        if token.startswith("ParameterKey="):
            key_part, _, value_part = token.partition(",")
            key = key_part.removeprefix("ParameterKey=")
            parsed[key] = value_part.removeprefix("ParameterValue=")
            continue
        key, sep, rest = token.partition("=")
        if not sep or not key:
            raise TargetError(f"parameter_overrides entry {token!r} is not Key=Value")
        parsed[key] = rest
    return parsed


# ---------------------------------------------------------------------------- the local cloud


def target_from_description(description: Mapping[str, Any], *, source: str) -> Target:
    """A Target from its JSON form (a state file, or LocalCloud.target_description())."""
    try:
        return Target(
            name=str(description.get("name") or "local"),
            region=str(description["region"]),
            stack_name=str(description["stack_name"]),
            endpoint_url=description.get("endpoint_url"),
            profile=description.get("profile"),
            account_id=description.get("account_id"),
            outputs={str(k): str(v) for k, v in dict(description["outputs"]).items()},
            parameters={
                **TEMPLATE_DEFAULTS,
                **{str(k): str(v) for k, v in dict(description.get("parameters") or {}).items()},
            },
            service_endpoints={
                str(k): str(v) for k, v in dict(description.get("service_endpoints") or {}).items()
            },
        )
    except (KeyError, TypeError, ValueError) as error:
        raise TargetError(f"{source} is not a restoredrill target description ({error})") from None


def write_state_file(path: Path, description: Mapping[str, Any]) -> None:
    """Write the local cloud's description atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(dict(description), indent=2, sort_keys=True) + "\n")
    partial.replace(path)


def load_state_file(path: Path) -> Target:
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetError(
            f"no local cloud state file {path}: start one with `restoredrill local` "
            "(and give the command's database before --local)"
        ) from None
    except (OSError, ValueError) as error:
        raise TargetError(f"cannot read the local cloud state file {path}: {error}") from None
    if not isinstance(description, dict):
        raise TargetError(f"{path} is not a restoredrill target description")
    pid = description.get("pid")
    if isinstance(pid, int) and not process_alive(pid):
        raise TargetError(
            f"the local cloud of {path} is not running (process {pid} is gone): "
            "start it again with `restoredrill local`"
        )
    return target_from_description(description, source=str(path))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


# ---------------------------------------------------------------------------- resolving


SessionFactory = Callable[[str | None, str | None], Any]


def guarded(
    command: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Report a :class:`CliError` as one line on stderr with exit status 2."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CliError as error:
            with contextlib.suppress(OSError):
                print(f"restoredrill: error: {error}", file=sys.stderr, flush=True)
            return EXIT_CLI_ERROR

    return run
