"""SAM's transform, done by aws-sam-translator (the library SAM CLI and cfn-lint use).

The translator turns ``AWS::Serverless::*`` resources, their events and ``Globals`` into plain
CloudFormation. It wants code on S3; local directories are handed to it as keys of a bucket
that exists nowhere (:data:`LOCAL_CODE_BUCKET`) and read back by :func:`local_code_dir`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import boto3
from samtranslator.metrics.metrics import (  # type: ignore[import-untyped]
    DummyMetricsPublisher,
    Metrics,
)
from samtranslator.model.exceptions import InvalidDocumentException  # type: ignore[import-untyped]
from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

from localcloud.errors import TemplateError

__all__ = ["LOCAL_CODE_BUCKET", "expand", "is_sam", "local_code_dir"]

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
LOCAL_CODE_BUCKET = "localcloud-code"
_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


def is_sam(document: Mapping[str, Any]) -> bool:
    transform = document.get("Transform")
    if SAM_TRANSFORM in (transform if isinstance(transform, list) else [transform]):
        return True
    resources = (document.get("Resources") or {}).values()
    return any(str(r.get("Type", "")).startswith("AWS::Serverless::") for r in resources)


def expand(
    document: Mapping[str, Any], *, parameters: Mapping[str, Any], pseudo: Mapping[str, str]
) -> dict[str, Any]:
    """The CloudFormation ``document`` becomes once SAM's transform has run."""
    sam = copy.deepcopy(dict(document))
    for properties, key in _code_locations(sam):
        location = properties.get(key)
        if isinstance(location, str) and not location.startswith("s3://"):
            properties[key] = f"s3://{LOCAL_CODE_BUCKET}/{quote(location, safe='')}"
    # The translator records metrics for CloudWatch; the dummy publisher drops them, and
    # publishing empties the cache that would otherwise log a warning when it is collected.
    metrics = Metrics(metrics_publisher=DummyMetricsPublisher())
    translator = Translator(
        None,
        Parser(),
        boto_session=boto3.session.Session(region_name=pseudo["AWS::Region"]),
        metrics=metrics,
    )
    try:
        translated: dict[str, Any] = translator.translate(
            sam, parameter_values={**parameters, **pseudo}, get_managed_policy_map=dict
        )
    except InvalidDocumentException as error:
        causes = "\n  ".join(str(cause.message) for cause in error.causes)
        raise TemplateError(f"SAM transform refused the template:\n  {causes}") from None
    finally:
        metrics.publish()
    return translated


def _code_locations(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    function_globals = (document.get("Globals") or {}).get("Function")
    if isinstance(function_globals, dict):
        yield function_globals, "CodeUri"
    for resource in (document.get("Resources") or {}).values():
        key = _CODE_PROPERTIES.get(str(resource.get("Type")))
        if key is not None and isinstance(resource.get("Properties"), dict):
            yield resource["Properties"], key


def local_code_dir(code: Any, *, base: Path, where: str) -> Path:
    """The directory a translated Code/Content property stands for."""
    if not isinstance(code, dict) or code.get("S3Bucket") != LOCAL_CODE_BUCKET:
        raise TemplateError(f"{where}: only a local directory runs locally, got {code!r}")
    return (base / unquote(str(code["S3Key"]))).resolve()
