"""Which stacks a command's arguments name: the local cloud's state file (``--local``), or
samconfig.toml's environments (or ``--stack-name`` and ``--region``) looked up in
CloudFormation, each as a :class:`restoredrill_cli.target.Target`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from restoredrill_cli import stack
from restoredrill_cli.target import (
    DEFAULT_CONFIG_ENV,
    DEFAULT_SAMCONFIG,
    REQUIRED_OUTPUTS,
    TEMPLATE_DEFAULTS,
    SamConfigEnvironment,
    SessionFactory,
    Target,
    TargetError,
    load_state_file,
    read_samconfig,
    samconfig_environment,
)


def resolve_targets(
    args: argparse.Namespace, *, session_factory: SessionFactory | None = None
) -> list[Target]:
    """The stacks the command's arguments name (the options of
    :func:`restoredrill_cli.target.add_target_arguments`).

    ``session_factory(profile, region)`` makes the boto3 Session CloudFormation is asked with
    (default: :func:`restoredrill_cli.stack.new_session`).
    """
    envs: list[str] | None = getattr(args, "config_env", None)
    samconfig: Path | None = getattr(args, "samconfig", None)
    stack_name: str | None = getattr(args, "stack_name", None)
    region: str | None = getattr(args, "region", None)
    profile: str | None = getattr(args, "profile", None)
    local: Path | None = getattr(args, "local", None)

    if local is not None:
        if envs or samconfig or stack_name or region or profile:
            raise TargetError(
                "--local talks to the local cloud only: leave out --config-env, --samconfig, "
                "--stack-name, --region and --profile"
            )
        return [load_state_file(local)]

    factory = session_factory or stack.new_session
    if stack_name is not None and not envs:
        wanted = [
            SamConfigEnvironment(
                name=stack_name,
                stack_name=stack_name,
                region=None,
                profile=None,
                parameter_overrides={},
            )
        ]
    else:
        path = samconfig or DEFAULT_SAMCONFIG
        config = read_samconfig(path)
        wanted = [
            samconfig_environment(config, env, path)
            for env in dict.fromkeys(envs or [DEFAULT_CONFIG_ENV])
        ]

    targets = []
    for env in wanted:
        name = stack_name or env.stack_name
        if not name:
            raise TargetError(
                f"environment {env.name!r} has no stack_name: set stack_name in "
                f"[{env.name}.global.parameters] (or [{env.name}.deploy.parameters]) "
                "or give --stack-name"
            )
        chosen_profile = profile or env.profile
        # Without a region in samconfig.toml or --region, the profile's (or AWS_REGION), as
        # `sam deploy` does.
        session = stack.session_or_error(factory, chosen_profile, region or env.region)
        chosen_region = session.region_name
        if not chosen_region:
            raise TargetError(
                f"no region for environment {env.name!r}: set region in "
                f"[{env.name}.deploy.parameters], give --region, or configure the profile's region"
            )
        described = stack.describe_stack(session, name, region=chosen_region)
        missing = [output for output in REQUIRED_OUTPUTS if not described.outputs.get(output)]
        if missing:
            raise TargetError(
                f"stack {name} ({chosen_region}) has no output {', '.join(missing)}: "
                "is it a restoredrill stack?"
            )
        targets.append(
            Target(
                name=env.name,
                region=chosen_region,
                stack_name=name,
                profile=chosen_profile,
                account_id=described.account_id,
                outputs=described.outputs,
                parameters={
                    **TEMPLATE_DEFAULTS,
                    **env.parameter_overrides,
                    **described.parameters,
                },
            )
        )
    return targets


def resolve_target(
    args: argparse.Namespace, *, session_factory: SessionFactory | None = None
) -> Target:
    """The one stack a command acts on (publishing a request needs exactly one)."""
    targets = resolve_targets(args, session_factory=session_factory)
    if len(targets) != 1:
        names = ", ".join(f"{t.name} ({t.stack_name}, {t.region})" for t in targets)
        raise TargetError(f"this command acts on one stack, not {len(targets)}: {names}")
    return targets[0]
