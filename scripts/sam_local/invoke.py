"""`sam local invoke` of one function with one event, against the built template."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from localcloud.template import load_yaml

# What the functions need to reach the world: declared (empty) in the template copy, because
# `sam local invoke --env-vars` sets only the variables a template declares.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA")


@dataclass(frozen=True)
class Invoked:
    exit_code: int
    returned: Any  # the function's return value, None when it printed none
    stdout: str
    stderr: str
    seconds: float


def template_for_invoke(build_dir: Path, target: Path) -> Path:
    """A copy of the built template that declares the endpoint variables, with its code and
    layer paths made absolute (the copy lives beside, not inside, the build)."""
    document = load_yaml(build_dir / "template.yaml")
    function_globals = document.setdefault("Globals", {}).setdefault("Function", {})
    variables = function_globals.setdefault("Environment", {}).setdefault("Variables", {})
    for name in ENDPOINT_VARIABLES:
        variables[name] = ""
    for resource in document["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = str((build_dir / properties[key]).resolve())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


class SamLocal:
    def __init__(
        self,
        *,
        sam: Path,
        template: Path,
        env_vars: Path,
        parameters: dict[str, str],
        region: str,
        add_hosts: dict[str, str],
        log_dir: Path,
    ) -> None:
        self._sam = sam
        self._template = template
        self._env_vars = env_vars
        self._parameters = parameters
        self._region = region
        self._add_hosts = add_hosts
        self._log_dir = log_dir
        self._count = 0

    def invoke(self, function: str, event: Path, *, timeout: float = 600) -> Invoked:
        command = [
            str(self._sam),
            "local",
            "invoke",
            function,
            "--template",
            str(self._template),
            "--event",
            str(event),
            "--env-vars",
            str(self._env_vars),
            "--region",
            self._region,
            "--skip-pull-image",
            "--parameter-overrides",
            " ".join(f"{key}={value}" for key, value in self._parameters.items()),
        ]
        for host, address in self._add_hosts.items():
            command += ["--add-host", f"{host}:{address}"]
        environment = {
            **os.environ,
            # moto accepts any key; nothing here can reach a real account.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self._region,
            "SAM_CLI_TELEMETRY": "0",
        }
        started = time.monotonic()
        completed = subprocess.run(  # noqa: S603
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        seconds = time.monotonic() - started
        self._count += 1
        log = self._log_dir / f"{self._count:02d}-{function}.log"
        log.write_text(
            f"$ {' '.join(command)}\nexit {completed.returncode}\n--- stdout\n"
            f"{completed.stdout}\n--- stderr\n{completed.stderr}"
        )
        return Invoked(
            exit_code=completed.returncode,
            returned=_returned(completed.stdout),
            stdout=completed.stdout,
            stderr=completed.stderr,
            seconds=seconds,
        )


def _returned(stdout: str) -> Any:
    text = stdout.strip()
    if not text:
        return None
    for candidate in (text, text.splitlines()[-1]):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return None
