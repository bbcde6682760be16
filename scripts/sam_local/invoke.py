"""`sam local invoke` of one function with one event, against the built template."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localcloud.template import load_yaml

# What the functions need to reach the world: declared (empty) in the template copy, because
# `sam local invoke --env-vars` sets only the variables a template declares.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA")
FUNCTION = "AWS::Serverless::Function"
LAYER = "AWS::Serverless::LayerVersion"


@dataclass(frozen=True)
class Invoked:
    exit_code: int
    returned: Any  # the function's return value, None when it printed none
    stdout: str
    stderr: str
    seconds: float


def template_for_invoke(build_dir: Path, target: Path) -> tuple[Path, list[Path]]:
    """A copy of the built template that declares the endpoint variables and has no layers,
    with its code paths made absolute; and the layer directories, in the order Lambda would
    extract them to /opt (they go into the invoke image, see :func:`invoke_image`)."""
    document = load_yaml(build_dir / "template.yaml")
    resources = document["Resources"]
    function_globals = document.setdefault("Globals", {}).setdefault("Function", {})
    variables = function_globals.setdefault("Environment", {}).setdefault("Variables", {})
    for name in ENDPOINT_VARIABLES:
        variables[name] = ""
    layer_refs = list(function_globals.pop("Layers", []))
    for resource in resources.values():
        properties = resource.get("Properties") or {}
        layer_refs += properties.pop("Layers", []) if resource["Type"] == FUNCTION else []
        if isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = str((build_dir / properties["CodeUri"]).resolve())
    layers: list[Path] = []
    for ref in layer_refs:
        name = str(ref.get("Ref")) if isinstance(ref, dict) else ""
        if name not in resources or resources[name]["Type"] != LAYER:
            raise ValueError(f"layer {ref!r} is not a layer of this template")
        directory = (build_dir / resources[name]["Properties"]["ContentUri"]).resolve()
        if directory not in layers:
            layers.append(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target, layers


def invoke_image(base: str, layers: list[Path], repository_prefix: str) -> str:
    """``base`` with the layers copied to /opt, as SAM CLI's own layer image has them.

    SAM CLI rebuilds its layer image on every invoke when a layer is defined in the template
    (samcli/local/docker/lambda_image.py); built once here and passed as ``--invoke-image``, it
    is reused. The layers' content hash is in the repository name: SAM names the image it
    derives after the repository, so new layers never meet an old derived image.
    """
    digest = hashlib.sha256(base.encode())
    for layer in layers:
        for path in sorted(layer.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(layer)).encode())
                digest.update(path.read_bytes())
    repository = f"{repository_prefix}{digest.hexdigest()[:16]}"
    tag = f"{repository}:latest"
    present = subprocess.run(  # noqa: S603
        ["docker", "image", "inspect", tag],  # noqa: S607
        capture_output=True,
        check=False,
    )
    if present.returncode != 0:
        dockerfile = f"FROM {base}\n" + "".join(
            f"COPY layer{index}/ /opt/\n" for index in range(len(layers))
        )
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            data = dockerfile.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for index, layer in enumerate(layers):
                tar.add(layer, arcname=f"layer{index}")
        subprocess.run(  # noqa: S603
            ["docker", "build", "--quiet", "--tag", tag, "-"],  # noqa: S607
            input=context.getvalue(),
            capture_output=True,
            check=True,
        )
    return tag


class SamLocal:
    def __init__(
        self,
        *,
        sam: Path,
        template: Path,
        image: str,
        env_vars: Path,
        parameters: dict[str, str],
        region: str,
        add_hosts: dict[str, str],
        sts_endpoint: str,
        log_dir: Path,
    ) -> None:
        self._sam = sam
        self._template = template
        self._image = image
        self._env_vars = env_vars
        self._parameters = parameters
        self._region = region
        self._add_hosts = add_hosts
        self._sts_endpoint = sts_endpoint
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
            "--invoke-image",
            self._image,
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
            # SAM CLI asks STS for the account id on every invoke: moto answers (the account of
            # the samples) instead of a real endpoint that cannot be reached from here.
            "AWS_ENDPOINT_URL_STS": self._sts_endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
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
