"""Read a SAM / CloudFormation template and resolve it the way CloudFormation would.

- YAML with the short-form tags (``!Ref``, ``!GetAtt``, ``!Sub`` ...) and the long forms.
- Parameters: template defaults overridden by the caller (like ``--parameter-overrides``), with
  the CloudFormation validations (required, AllowedValues, AllowedPattern, Min/Max...).
- Pseudo parameters, Conditions, ``AWS::NoValue``.
- Refs and GetAtts to resources resolve to what provisioning bound (:meth:`Template.bind`).
- ``Globals.Function`` merged onto every ``AWS::Serverless::Function`` with SAM's rules
  (maps merged, lists appended, scalars replaced).

Anything unknown (an intrinsic, a Ref to a name the template does not declare, a circular
dependency) raises :class:`TemplateError`: a wiring mistake must fail locally too.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "NO_VALUE",
    "Pseudo",
    "Template",
    "TemplateError",
    "load_yaml",
]


class TemplateError(Exception):
    """The template is wrong (or uses something the local cloud cannot do)."""


class _NoValue:
    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()

# ----------------------------------------------------------------------------------- YAML


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader + CloudFormation tags; dates stay strings (``2010-09-09``)."""


_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise TemplateError(f"!{tag_suffix}: unexpected YAML node {type(node).__name__}")
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        if not attribute:
            raise TemplateError(f"!GetAtt {value!r}: expected 'Resource.Attribute'")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(source: str | Path) -> dict[str, Any]:
    """Load a template from a path (or YAML/JSON text) into plain dicts and lists."""
    text = source.read_text() if isinstance(source, Path) else source
    document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise TemplateError("the template is not a mapping")
    return document


# ----------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Pseudo:
    stack_name: str
    region: str = "us-east-1"
    account_id: str = "123456789012"
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"

    @property
    def stack_id(self) -> str:
        stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.account_id}/{self.stack_name}")
        return (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:"
            f"stack/{self.stack_name}/{stack_uuid}"
        )

    def value(self, name: str) -> Any:
        values: dict[str, Any] = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackId": self.stack_id,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        return values[name]


PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::StackName",
        "AWS::Region",
        "AWS::AccountId",
        "AWS::Partition",
        "AWS::URLSuffix",
        "AWS::StackId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
    }
)

INTRINSICS = frozenset(
    {
        "Ref",
        "Condition",
        "Fn::GetAtt",
        "Fn::Sub",
        "Fn::If",
        "Fn::Equals",
        "Fn::Join",
        "Fn::Select",
        "Fn::Split",
        "Fn::Not",
        "Fn::And",
        "Fn::Or",
        "Fn::Base64",
        "Fn::FindInMap",
        "Fn::GetAZs",
        "Fn::ToJsonString",
        "Fn::Length",
    }
)

# Intrinsics CloudFormation has but the local cloud cannot evaluate.
_UNSUPPORTED = frozenset({"Fn::ImportValue", "Fn::Cidr", "Fn::Transform", "Fn::ForEach"})

# SAM implicit resources a template may reference: <Function>Role (when no Role is given).
SAM_FUNCTION_TYPE = "AWS::Serverless::Function"

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _is_intrinsic(node: Any) -> bool:
    if not isinstance(node, dict) or len(node) != 1:
        return False
    key = next(iter(node))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rules: maps merge (local wins), lists append (globals first), else local."""
    if (
        isinstance(global_value, dict)
        and isinstance(local_value, dict)
        and not _is_intrinsic(global_value)
        and not _is_intrinsic(local_value)
    ):
        merged = copy.deepcopy(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*copy.deepcopy(global_value), *local_value]
    return local_value


@dataclass
class _Binding:
    ref: Any
    attributes: dict[str, Any]


class Template:
    """A loaded template with its parameter values resolved and resources bindable."""

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        stack_name: str,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        parameter_overrides: Mapping[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        self.document: dict[str, Any] = copy.deepcopy(dict(document))
        self.path = path
        self.pseudo = Pseudo(stack_name=stack_name, region=region, account_id=account_id)
        self.resources: dict[str, dict[str, Any]] = dict(self.document.get("Resources") or {})
        if not self.resources:
            raise TemplateError("the template has no Resources")
        for logical_id, resource in self.resources.items():
            if not isinstance(resource, dict) or "Type" not in resource:
                raise TemplateError(f"resource {logical_id}: no Type")
        self.mappings: dict[str, Any] = dict(self.document.get("Mappings") or {})
        self.outputs_section: dict[str, Any] = dict(self.document.get("Outputs") or {})
        self._condition_defs: dict[str, Any] = dict(self.document.get("Conditions") or {})
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self._bindings: dict[str, _Binding] = {}
        self._implicit: dict[str, str] = self._implicit_resources()
        self.parameters: dict[str, Any] = self._resolve_parameters(dict(parameter_overrides or {}))
        self.validate_references()

    @classmethod
    def load(cls, path: Path, **kwargs: Any) -> Template:
        return cls(load_yaml(Path(path)), path=Path(path), **kwargs)

    # ------------------------------------------------------------------ parameters

    def _resolve_parameters(self, overrides: dict[str, Any]) -> dict[str, Any]:
        declared: dict[str, Any] = dict(self.document.get("Parameters") or {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"parameter overrides for undeclared parameters: {unknown}")
        values: dict[str, Any] = {}
        missing: list[str] = []
        for name, spec in declared.items():
            spec = spec or {}
            if name in overrides:
                raw = overrides[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                missing.append(name)
                continue
            values[name] = self._coerce_parameter(name, spec, raw)
        if missing:
            raise TemplateError(
                f"parameters without a default must be given (parameter_overrides): {missing}"
            )
        return values

    @staticmethod
    def _coerce_parameter(name: str, spec: Mapping[str, Any], raw: Any) -> Any:
        ptype = str(spec.get("Type", "String"))
        if ptype.startswith("AWS::SSM::Parameter::Value<"):
            raise TemplateError(f"parameter {name}: type {ptype} is not supported locally")
        is_list = ptype.startswith("List<") or ptype == "CommaDelimitedList"
        if is_list:
            if isinstance(raw, list | tuple):
                items = [str(item) for item in raw]
            else:
                items = [item.strip() for item in str(raw).split(",")] if str(raw) != "" else []
            value: Any = items
            checked = items
        else:
            if isinstance(raw, list | tuple):
                raise TemplateError(f"parameter {name} ({ptype}) got a list: {raw!r}")
            if isinstance(raw, bool):
                raw = str(raw).lower()
            value = str(raw)
            checked = [value]
        number = ptype in ("Number", "List<Number>")
        for item in checked:
            if number:
                try:
                    as_number = float(item)
                except ValueError:
                    raise TemplateError(f"parameter {name}: {item!r} is not a Number") from None
                if "MinValue" in spec and as_number < float(spec["MinValue"]):
                    raise TemplateError(f"parameter {name}: {item} < MinValue {spec['MinValue']}")
                if "MaxValue" in spec and as_number > float(spec["MaxValue"]):
                    raise TemplateError(f"parameter {name}: {item} > MaxValue {spec['MaxValue']}")
            allowed = spec.get("AllowedValues")
            if allowed is not None and item not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}: {item!r} not in AllowedValues {allowed}")
            pattern = spec.get("AllowedPattern")
            if pattern is not None and re.fullmatch(str(pattern), item) is None:
                raise TemplateError(f"parameter {name}: {item!r} does not match {pattern!r}")
            if "MinLength" in spec and len(item) < int(spec["MinLength"]):
                raise TemplateError(f"parameter {name}: shorter than MinLength {spec['MinLength']}")
            if "MaxLength" in spec and len(item) > int(spec["MaxLength"]):
                raise TemplateError(f"parameter {name}: longer than MaxLength {spec['MaxLength']}")
        return value

    # ------------------------------------------------------------------ conditions

    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name not in self._condition_defs:
            raise TemplateError(f"condition {name!r} is not declared in Conditions")
        if name in self._evaluating:
            raise TemplateError(f"condition {name!r} refers to itself")
        self._evaluating.add(name)
        try:
            value = self._eval_condition(self._condition_defs[name], where=f"Conditions.{name}")
        finally:
            self._evaluating.discard(name)
        self._conditions[name] = value
        return value

    def _eval_condition(self, node: Any, *, where: str) -> bool:
        value = self.resolve(node, where=where)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise TemplateError(f"{where}: a condition must evaluate to a boolean, got {value!r}")

    def resource_enabled(self, logical_id: str) -> bool:
        if logical_id in self._implicit:
            return self.resource_enabled(self._implicit[logical_id])
        resource = self.resources[logical_id]
        condition = resource.get("Condition")
        return True if condition is None else self.condition(str(condition))

    # ------------------------------------------------------------------ references

    def _implicit_resources(self) -> dict[str, str]:
        implicit: dict[str, str] = {}
        for logical_id, resource in self.resources.items():
            if resource["Type"] == SAM_FUNCTION_TYPE and "Role" not in (
                resource.get("Properties") or {}
            ):
                implicit[f"{logical_id}Role"] = logical_id
        return implicit

    def _known_name(self, name: str) -> bool:
        return (
            name in self.parameters
            or name in PSEUDO_PARAMETERS
            or name in self.resources
            or name in self._implicit
            or name in (self.document.get("Parameters") or {})
        )

    def references(self, node: Any) -> set[str]:
        """Every resource, parameter or pseudo parameter ``node`` refers to (all branches)."""
        found: set[str] = set()
        self._collect(node, found, local=frozenset())
        return found

    def _collect(self, node: Any, found: set[str], *, local: frozenset[str]) -> None:
        if isinstance(node, list):
            for item in node:
                self._collect(item, found, local=local)
            return
        if not isinstance(node, dict):
            return
        if len(node) == 1:
            key, value = next(iter(node.items()))
            if key == "Ref" and isinstance(value, str):
                found.add(value)
                return
            if key == "Fn::GetAtt":
                if isinstance(value, list) and value and isinstance(value[0], str):
                    found.add(value[0])
                    self._collect(value[1:], found, local=local)
                elif isinstance(value, str):
                    found.add(value.partition(".")[0])
                return
            if key == "Fn::Sub":
                template, variables = (
                    (value, {}) if isinstance(value, str) else (value[0], value[1])
                )
                names = local | frozenset(variables or {})
                self._collect(list((variables or {}).values()), found, local=local)
                for match in _SUB_VARIABLE.finditer(str(template)):
                    expression = match.group(1)
                    if expression.startswith("!"):
                        continue
                    if expression in names:
                        continue
                    found.add(
                        expression.partition(".")[0] if "::" not in expression else expression
                    )
                return
        for value in node.values():
            self._collect(value, found, local=local)

    def validate_references(self) -> None:
        """Every Ref/GetAtt/Sub name must exist; every Fn::If condition must be declared."""
        problems: list[str] = []
        sections: list[tuple[str, Any]] = [
            (f"Resources.{k}", v) for k, v in self.resources.items()
        ] + [(f"Outputs.{k}", v) for k, v in self.outputs_section.items()]
        sections.append(("Globals", self.document.get("Globals") or {}))
        sections.append(("Conditions", self._condition_defs))
        for where, node in sections:
            for name in sorted(self.references(node)):
                if not self._known_name(name):
                    problems.append(
                        f"{where} refers to {name!r}, which the template does not declare"
                    )
            for key in sorted(self._intrinsic_keys(node)):
                if key not in INTRINSICS:
                    kind = "not supported locally" if key in _UNSUPPORTED else "unknown"
                    problems.append(f"{where} uses {key}: {kind} intrinsic function")
            for condition in self._if_conditions(node):
                if condition not in self._condition_defs:
                    problems.append(f"{where} uses condition {condition!r}, not in Conditions")
        for logical_id, resource in self.resources.items():
            depends = resource.get("DependsOn") or []
            for name in [depends] if isinstance(depends, str) else depends:
                if name not in self.resources:
                    problems.append(f"Resources.{logical_id}.DependsOn: unknown resource {name!r}")
            resource_condition = resource.get("Condition")
            if resource_condition is not None and resource_condition not in self._condition_defs:
                problems.append(
                    f"Resources.{logical_id}.Condition: unknown condition {resource_condition!r}"
                )
        if problems:
            raise TemplateError("unresolved references:\n  " + "\n  ".join(problems))

    def _intrinsic_keys(self, node: Any) -> set[str]:
        keys: set[str] = set()
        if isinstance(node, list):
            for item in node:
                keys |= self._intrinsic_keys(item)
        elif isinstance(node, dict):
            if len(node) == 1 and next(iter(node)).startswith("Fn::"):
                keys.add(next(iter(node)))
            for value in node.values():
                keys |= self._intrinsic_keys(value)
        return keys

    def _if_conditions(self, node: Any) -> Iterable[str]:
        if isinstance(node, list):
            for item in node:
                yield from self._if_conditions(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "Fn::If" and isinstance(value, list) and value:
                    yield str(value[0])
                if key == "Condition" and isinstance(value, str) and len(node) == 1:
                    yield value
                yield from self._if_conditions(value)

    def resource_dependencies(self, logical_id: str) -> set[str]:
        """Resources ``logical_id`` needs created first (Refs, GetAtts, Subs, DependsOn)."""
        resource = self.resources[logical_id]
        node: Any = resource
        if resource["Type"] == SAM_FUNCTION_TYPE:
            node = {**resource, "Properties": self.function_properties_raw(logical_id)}
        names = self.references({k: v for k, v in node.items() if k != "Condition"})
        depends = resource.get("DependsOn") or []
        names |= {depends} if isinstance(depends, str) else set(depends)
        result: set[str] = set()
        for name in names:
            target = self._implicit.get(name, name)
            if target in self.resources:
                result.add(target)
        return result

    def creation_order(self) -> list[str]:
        """Enabled resources in dependency order; a cycle is an error, as in CloudFormation."""
        enabled = [r for r in self.resources if self.resource_enabled(r)]
        enabled_set = set(enabled)
        # A reference to a resource whose condition is false is allowed only in a branch not
        # taken; resolve() raises for the others.
        deps = {r: self.resource_dependencies(r) & enabled_set for r in enabled}
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(node: str, stack: list[str]) -> None:
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                cycle = [*stack[stack.index(node) :], node]
                raise TemplateError(
                    "circular dependency between resources: "
                    + " -> ".join(cycle)
                    + (
                        " (a resource may not refer to itself; Globals apply to every"
                        " function, including the one they name)"
                        if len(set(cycle)) == 1
                        else ""
                    )
                )
            state[node] = 1
            for dependency in sorted(deps[node]):
                visit(dependency, [*stack, node])
            state[node] = 2
            order.append(node)

        for logical_id in enabled:
            visit(logical_id, [])
        return order

    # ------------------------------------------------------------------ bindings

    def bind(self, logical_id: str, ref: Any, attributes: Mapping[str, Any] | None = None) -> None:
        """Record what a created resource's Ref and GetAtt return."""
        self._bindings[logical_id] = _Binding(ref=ref, attributes=dict(attributes or {}))

    def bound(self, logical_id: str) -> bool:
        return logical_id in self._bindings

    def ref_of(self, logical_id: str) -> Any:
        return self._ref(logical_id, where=logical_id)

    def _ref(self, name: str, *, where: str) -> Any:
        if name in PSEUDO_PARAMETERS:
            return self.pseudo.value(name)
        if name in self.parameters:
            return self.parameters[name]
        target = self._implicit.get(name, name)
        if target in self.resources:
            if not self.resource_enabled(target):
                raise TemplateError(
                    f"{where}: Ref to {name}, which is not created (condition "
                    f"{self.resources[target].get('Condition')} is false)"
                )
            binding = self._bindings.get(name)
            if binding is None:
                raise TemplateError(f"{where}: Ref to {name} before it was created")
            return binding.ref
        raise TemplateError(f"{where}: Ref to unknown name {name!r}")

    def _getatt(self, name: str, attribute: str, *, where: str) -> Any:
        target = self._implicit.get(name, name)
        if target not in self.resources:
            raise TemplateError(f"{where}: GetAtt on unknown resource {name!r}")
        if not self.resource_enabled(target):
            raise TemplateError(f"{where}: GetAtt {name}.{attribute}: {name} is not created")
        binding = self._bindings.get(name)
        if binding is None:
            raise TemplateError(f"{where}: GetAtt {name}.{attribute} before {name} was created")
        if attribute not in binding.attributes:
            raise TemplateError(
                f"{where}: {name} ({self.resources[target]['Type']}) has no attribute "
                f"{attribute!r}; it has {sorted(binding.attributes)}"
            )
        return binding.attributes[attribute]

    # ------------------------------------------------------------------ resolution

    def resolve(self, node: Any, *, where: str = "template") -> Any:
        """Evaluate every intrinsic in ``node``; ``AWS::NoValue`` removes keys/items."""
        if isinstance(node, list):
            items = [self.resolve(item, where=f"{where}[{i}]") for i, item in enumerate(node)]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            key = next(iter(node))
            if (
                key == "Ref"
                or key.startswith("Fn::")
                or (key == "Condition" and isinstance(node[key], str))
            ):
                return self._intrinsic(key, node[key], where=where)
        resolved: dict[str, Any] = {}
        for key, value in node.items():
            item = self.resolve(value, where=f"{where}.{key}")
            if item is not NO_VALUE:
                resolved[key] = item
        return resolved

    def _intrinsic(self, key: str, arg: Any, *, where: str) -> Any:
        at = f"{where} ({key})"
        if key == "Ref":
            if not isinstance(arg, str):
                raise TemplateError(f"{at}: Ref takes a name, got {arg!r}")
            return self._ref(arg, where=at)
        if key == "Condition":
            return self.condition(arg)
        if key in _UNSUPPORTED:
            raise TemplateError(f"{at}: {key} is not supported by the local cloud")
        if key not in INTRINSICS:
            raise TemplateError(f"{at}: unknown intrinsic function {key}")
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                arg = list(arg.partition(".")[::2])
            if not isinstance(arg, list) or len(arg) != 2:
                raise TemplateError(f"{at}: expected [Resource, Attribute], got {arg!r}")
            attribute = self.resolve(arg[1], where=at)
            return self._getatt(str(arg[0]), str(attribute), where=at)
        if key == "Fn::Sub":
            return self._sub(arg, where=at)
        if key == "Fn::If":
            if not isinstance(arg, list) or len(arg) != 3:
                raise TemplateError(f"{at}: expected [Condition, IfTrue, IfFalse]")
            branch = arg[1] if self.condition(str(arg[0])) else arg[2]
            return self.resolve(branch, where=at)
        if key == "Fn::Equals":
            if not isinstance(arg, list) or len(arg) != 2:
                raise TemplateError(f"{at}: expected [Value1, Value2]")
            left, right = (self.resolve(v, where=at) for v in arg)
            return _normal(left) == _normal(right)
        if key == "Fn::Not":
            if not isinstance(arg, list) or len(arg) != 1:
                raise TemplateError(f"{at}: expected [Condition]")
            return not self._eval_condition(arg[0], where=at)
        if key in ("Fn::And", "Fn::Or"):
            if not isinstance(arg, list) or not 2 <= len(arg) <= 10:
                raise TemplateError(f"{at}: expected 2 to 10 conditions")
            values = [self._eval_condition(v, where=at) for v in arg]
            return all(values) if key == "Fn::And" else any(values)
        if key == "Fn::Join":
            if not isinstance(arg, list) or len(arg) != 2:
                raise TemplateError(f"{at}: expected [Delimiter, [Values]]")
            delimiter = self.resolve(arg[0], where=at)
            values = self.resolve(arg[1], where=at)
            if not isinstance(values, list):
                raise TemplateError(f"{at}: the values to join must be a list, got {values!r}")
            return str(delimiter).join(_scalar(v, where=at) for v in values)
        if key == "Fn::Select":
            if not isinstance(arg, list) or len(arg) != 2:
                raise TemplateError(f"{at}: expected [Index, [Values]]")
            index = int(self.resolve(arg[0], where=at))
            values = self.resolve(arg[1], where=at)
            if not isinstance(values, list) or not 0 <= index < len(values):
                raise TemplateError(f"{at}: index {index} out of range of {values!r}")
            return values[index]
        if key == "Fn::Split":
            if not isinstance(arg, list) or len(arg) != 2:
                raise TemplateError(f"{at}: expected [Delimiter, String]")
            delimiter = str(self.resolve(arg[0], where=at))
            return _scalar(self.resolve(arg[1], where=at), where=at).split(delimiter)
        if key == "Fn::Base64":
            text = _scalar(self.resolve(arg, where=at), where=at)
            return base64.b64encode(text.encode()).decode()
        if key == "Fn::FindInMap":
            if not isinstance(arg, list) or len(arg) != 3:
                raise TemplateError(f"{at}: expected [MapName, TopLevelKey, SecondLevelKey]")
            names = [_scalar(self.resolve(v, where=at), where=at) for v in arg]
            try:
                return self.mappings[names[0]][names[1]][names[2]]
            except (KeyError, TypeError):
                raise TemplateError(f"{at}: no mapping entry {names}") from None
        if key == "Fn::GetAZs":
            return [f"{self.pseudo.region}{zone}" for zone in "abc"]
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg, where=at), separators=(",", ":"))
        if key == "Fn::Length":
            values = self.resolve(arg, where=at)
            if not isinstance(values, list):
                raise TemplateError(f"{at}: expected a list")
            return len(values)
        raise TemplateError(f"{at}: unknown intrinsic function {key}")  # pragma: no cover

    def _sub(self, arg: Any, *, where: str) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            text = arg[0]
            variables = {k: self.resolve(v, where=f"{where}.{k}") for k, v in arg[1].items()}
        else:
            raise TemplateError(f"{where}: expected a string or [String, {{Variables}}]")
        if not isinstance(text, str):
            raise TemplateError(f"{where}: the string to substitute must be a string")

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                value = variables[expression]
            elif expression in PSEUDO_PARAMETERS or expression in self.parameters:
                value = self._ref(expression, where=where)
            elif "." in expression:
                resource, _, attribute = expression.partition(".")
                value = self._getatt(resource, attribute, where=where)
            else:
                value = self._ref(expression, where=where)
            return _scalar(value, where=f"{where} ${{{expression}}}")

        return _SUB_VARIABLE.sub(substitute, text)

    # ------------------------------------------------------------------ SAM specifics

    def function_properties_raw(self, logical_id: str) -> dict[str, Any]:
        """A function's Properties with Globals.Function applied (not yet resolved)."""
        properties = dict(self.resources[logical_id].get("Properties") or {})
        global_function = dict((self.document.get("Globals") or {}).get("Function") or {})
        merged = dict(global_function)
        for key, value in properties.items():
            merged[key] = merge_globals(global_function[key], value) if key in merged else value
        return copy.deepcopy(merged)

    def outputs(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for name, output in self.outputs_section.items():
            condition = (output or {}).get("Condition")
            if condition is not None and not self.condition(str(condition)):
                continue
            value = self.resolve((output or {}).get("Value"), where=f"Outputs.{name}")
            result[name] = _scalar(value, where=f"Outputs.{name}")
        return result


def _normal(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


def _scalar(value: Any, *, where: str) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"{where}: expected a string, got {value!r}")
