"""The stack as plain CloudFormation, for StackSets with service-managed permissions.

Such StackSets refuse templates with macros, and SAM's transform is one (docs/organization.md).
``sam package`` uploads the functions' code and the layers to S3 and rewrites the template to
point at it; aws-sam-translator then does what CloudFormation's transform would have done. The
result has no ``Transform`` and no ``AWS::Serverless::*`` resource; Parameters, Conditions,
Rules and Outputs pass through.

``--regional``: Lambda reads code only from a bucket in the function's own Region, so the code
bucket is named ``BUCKET-<region>`` per Region; the template then names
``BUCKET-${AWS::Region}`` and the upload goes to ``BUCKET-<--region>``.

    python scripts/export_template.py --template .aws-sam/build/template.yaml \
        --bucket acme-restoredrill-code --region us-east-1 --output plain-template.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from localcloud.errors import TemplateError
from localcloud.sam import expand
from localcloud.template import load_yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAM = ROOT / ".venv-tools" / "bin" / "sam"
_CODE_PROPERTIES = {"AWS::Lambda::Function": "Code", "AWS::Lambda::LayerVersion": "Content"}


class ExportError(Exception):
    """The template could not be packaged or is not plain CloudFormation afterwards."""


def upload_bucket(bucket: str, *, region: str, regional: bool) -> str:
    return f"{bucket}-{region}" if regional else bucket


def package(
    template: Path, *, bucket: str, prefix: str, region: str, sam: Path, workdir: Path
) -> Path:
    """``sam package``: the code on S3, and the template that points at it."""
    packaged = workdir / "packaged.yaml"
    command = [
        str(sam),
        "package",
        "--template-file",
        str(template),
        "--s3-bucket",
        bucket,
        "--s3-prefix",
        prefix,
        "--region",
        region,
        "--output-template-file",
        str(packaged),
    ]
    # The command is this script's own: sam from the tools environment and the caller's paths.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise ExportError(f"sam package failed ({result.returncode}):\n{result.stderr.strip()}")
    return packaged


def translate(packaged: Path, *, region: str) -> dict[str, Any]:
    """The packaged SAM template as the plain CloudFormation the transform would deploy."""
    try:
        plain = expand(load_yaml(packaged), parameters={}, pseudo={"AWS::Region": region})
    except TemplateError as error:
        raise ExportError(str(error)) from None
    serverless = sorted(
        name
        for name, resource in plain.get("Resources", {}).items()
        if str(resource.get("Type", "")).startswith("AWS::Serverless::")
    )
    if "Transform" in plain or serverless:
        raise ExportError(f"still SAM after the transform: {serverless or 'Transform'}")
    return plain


def code_locations(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each Lambda function's Code and each layer's Content, by logical id."""
    for name, resource in template.get("Resources", {}).items():
        key = _CODE_PROPERTIES.get(str(resource.get("Type")))
        if key is not None:
            yield name, resource["Properties"][key]


def name_regional_buckets(template: dict[str, Any], *, bucket: str) -> None:
    """Point every code location at ``bucket-${AWS::Region}`` (Lambda reads its own Region's)."""
    for _, location in code_locations(template):
        location["S3Bucket"] = {"Fn::Sub": f"{bucket}-${{AWS::Region}}"}


def export(
    template: Path,
    *,
    bucket: str,
    prefix: str,
    region: str,
    regional: bool = False,
    sam: Path = DEFAULT_SAM,
) -> dict[str, Any]:
    target = upload_bucket(bucket, region=region, regional=regional)
    with tempfile.TemporaryDirectory() as workdir:
        packaged = package(
            template, bucket=target, prefix=prefix, region=region, sam=sam, workdir=Path(workdir)
        )
        plain = translate(packaged, region=region)
    if regional:
        name_regional_buckets(plain, bucket=bucket)
    return plain


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="template.yaml as plain CloudFormation")
    parser.add_argument("--template", type=Path, default=ROOT / ".aws-sam/build/template.yaml")
    parser.add_argument("--bucket", required=True, help="code bucket (base name with --regional)")
    parser.add_argument("--prefix", default="restoredrill")
    parser.add_argument("--region", required=True, help="the Region sam package uploads to")
    parser.add_argument("--regional", action="store_true", help="code bucket BUCKET-<Region>")
    parser.add_argument("--sam", type=Path, default=DEFAULT_SAM)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        plain = export(
            args.template,
            bucket=args.bucket,
            prefix=args.prefix,
            region=args.region,
            regional=args.regional,
            sam=args.sam,
        )
    except ExportError as error:
        print(f"export-template: {error}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(plain, indent=2, sort_keys=True) + "\n")
    print(f"plain CloudFormation template: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
