"""`make sam-local`'s template copy: what `sam local invoke` needs to reach moto and reuse its
image, and nothing else changed."""

import sys
from pathlib import Path

import pytest
import yaml

from localcloud.template import load_yaml

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

from sam_local.invoke import template_for_invoke  # noqa: E402

BUILT = """
Globals:
  Function:
    Runtime: python3.12
    Layers:
      - Ref: CodeLayer
      - Ref: PolicyLayer
    Environment:
      Variables:
        RUN_TABLE_NAME:
          Ref: RunTable
Resources:
  CodeLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: CodeLayer
  PolicyLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: ../../policy
  RunTable:
    Type: AWS::DynamoDB::Table
  StartDrillFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: StartDrillFunction
      Handler: app.handler
"""


def built_template(tmp_path: Path, text: str = BUILT) -> Path:
    build_dir = tmp_path / "project" / ".aws-sam" / "build"
    (build_dir / "StartDrillFunction").mkdir(parents=True)
    (build_dir / "CodeLayer").mkdir()
    (tmp_path / "project" / "policy").mkdir()
    (build_dir / "template.yaml").write_text(text)
    return build_dir


def test_the_copy_declares_the_endpoints_and_keeps_the_functions_own_variables(
    tmp_path: Path,
) -> None:
    # Given a built template whose functions get RUN_TABLE_NAME from the globals
    build_dir = built_template(tmp_path)

    # When the copy for sam local invoke is written
    copy, _ = template_for_invoke(build_dir, tmp_path / "sam-local" / "template.yaml")

    # Then it declares the endpoint variables (empty: --env-vars sets them) beside the others
    variables = load_yaml(copy)["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["AWS_ENDPOINT_URL"] == ""
    assert variables["AWS_ENDPOINT_URL_LAMBDA"] == ""
    assert variables["RUN_TABLE_NAME"] == {"Ref": "RunTable"}


def test_the_copy_points_at_the_built_code_and_hands_the_layers_over_in_order(
    tmp_path: Path,
) -> None:
    # Given a built template with two layers in the globals
    build_dir = built_template(tmp_path)

    # When the copy is written somewhere else
    copy, layers = template_for_invoke(build_dir, tmp_path / "sam-local" / "template.yaml")

    # Then its code path is the built function's, it names no layer any more, and the layer
    # directories come back in the order Lambda extracts them to /opt
    document = yaml.safe_load(copy.read_text())
    function = document["Resources"]["StartDrillFunction"]["Properties"]
    assert Path(function["CodeUri"]) == (build_dir / "StartDrillFunction").resolve()
    assert "Layers" not in document["Globals"]["Function"]
    assert layers == [(build_dir / "CodeLayer").resolve(), (tmp_path / "project/policy").resolve()]


def test_a_layer_that_is_not_in_the_template_is_refused(tmp_path: Path) -> None:
    # Given a function that names a layer by ARN (SAM would download it; nothing can here)
    text = BUILT.replace(
        "      Handler: app.handler\n",
        "      Handler: app.handler\n"
        "      Layers:\n"
        "        - arn:aws:lambda:us-east-1:123456789012:layer:elsewhere:1\n",
    )
    build_dir = built_template(tmp_path, text)

    # When the copy is written, then the run stops with the layer named
    with pytest.raises(ValueError, match="layer:elsewhere"):
        template_for_invoke(build_dir, tmp_path / "sam-local" / "template.yaml")
