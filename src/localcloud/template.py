"""Resolve a CloudFormation template (SAM's expanded by :mod:`localcloud.sam`) as CloudFormation
would: parameters with their validations, pseudo parameters, conditions, intrinsics, and Refs and
GetAtts to what provisioning bound (:meth:`Template.bind`). Anything unknown raises
:class:`TemplateError`: a wiring mistake must fail locally too.
"""

from __future__ import annotations

import base64
import copy
import graphlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from samtranslator.plugins.globals.globals import GlobalProperties  # type: ignore[import-untyped]
from samtranslator.yaml_helper import intrinsics_multi_constructor  # type: ignore[import-untyped]

from localcloud.errors import TemplateError
from localcloud.sam import expand, is_sam

__all__ = ["NO_VALUE", "Pseudo", "Template", "TemplateError", "load_yaml", "merge_globals"]


class _NoValue:
    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader + CloudFormation's short-form tags; dates stay strings (``2010-09-09``)."""


_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CfnLoader.add_multi_constructor("!", intrinsics_multi_constructor)


def load_yaml(source: str | Path) -> dict[str, Any]:
    text = source.read_text() if isinstance(source, Path) else source
    document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise TemplateError("the template is not a mapping")
    return document


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

    def values(self) -> dict[str, Any]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackId": self.stack_id,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }


PSEUDO_PARAMETERS = frozenset(Pseudo(stack_name="").values())

# Intrinsics CloudFormation has but the local cloud cannot evaluate.
_UNSUPPORTED = frozenset({"Fn::ImportValue", "Fn::Cidr", "Fn::Transform", "Fn::ForEach"})

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rules: maps merge (local wins), lists append (globals first), else local."""
    return GlobalProperties(copy.deepcopy(global_value)).merge(local_value)


@dataclass
class _Binding:
    ref: Any
    attributes: dict[str, Any]


class Template:
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
        self.path = path
        self.pseudo = Pseudo(stack_name=stack_name, region=region, account_id=account_id)
        self._declared: dict[str, Any] = dict(document.get("Parameters") or {})
        self.parameters: dict[str, Any] = self._resolve_parameters(dict(parameter_overrides or {}))
        self.document: dict[str, Any] = (
            expand(document, parameters=self.parameters, pseudo=self._pseudo_values())
            if is_sam(document)
            else copy.deepcopy(dict(document))
        )
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
        self.validate_references()

    @classmethod
    def load(cls, path: Path, **kwargs: Any) -> Template:
        return cls(load_yaml(Path(path)), path=Path(path), **kwargs)

    def _pseudo_values(self) -> dict[str, str]:
        names = ("AWS::StackName", "AWS::Region", "AWS::AccountId", "AWS::Partition")
        return {name: self.pseudo.values()[name] for name in names}

    def _resolve_parameters(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self._declared))
        if unknown:
            raise TemplateError(f"parameter overrides for undeclared parameters: {unknown}")
        values: dict[str, Any] = {}
        missing: list[str] = []
        for name, spec in self._declared.items():
            spec = spec or {}
            if name in overrides:
                values[name] = _coerce_parameter(name, spec, overrides[name])
            elif "Default" in spec:
                values[name] = _coerce_parameter(name, spec, spec["Default"])
            else:
                missing.append(name)
        if missing:
            raise TemplateError(
                f"parameters without a default must be given (parameter_overrides): {missing}"
            )
        return values

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
        condition = self.resources[logical_id].get("Condition")
        return True if condition is None else self.condition(str(condition))

    def _known_name(self, name: str) -> bool:
        return name in self._declared or name in PSEUDO_PARAMETERS or name in self.resources

    def validate_references(self) -> None:
        """Every Ref/GetAtt/Sub name must exist; every Fn::If condition must be declared."""
        sections: list[tuple[str, Any]] = [
            *((f"Resources.{k}", v) for k, v in self.resources.items()),
            *((f"Outputs.{k}", v) for k, v in self.outputs_section.items()),
            ("Conditions", self._condition_defs),
        ]
        problems = [p for where, node in sections for p in self._section_problems(where, node)]
        for logical_id, resource in self.resources.items():
            problems += self._resource_problems(logical_id, resource)
        if problems:
            raise TemplateError("unresolved references:\n  " + "\n  ".join(problems))

    def _section_problems(self, where: str, node: Any) -> Iterable[str]:
        for name in sorted(references(node)):
            if not self._known_name(name):
                yield f"{where} refers to {name!r}, which the template does not declare"
        for key in sorted(_intrinsic_keys(node)):
            if key not in INTRINSICS:
                kind = "not supported locally" if key in _UNSUPPORTED else "unknown"
                yield f"{where} uses {key}: {kind} intrinsic function"
        for condition in _if_conditions(node):
            if condition not in self._condition_defs:
                yield f"{where} uses condition {condition!r}, not in Conditions"

    def _resource_problems(self, logical_id: str, resource: Mapping[str, Any]) -> Iterable[str]:
        depends = resource.get("DependsOn") or []
        for name in [depends] if isinstance(depends, str) else depends:
            if name not in self.resources:
                yield f"Resources.{logical_id}.DependsOn: unknown resource {name!r}"
        condition = resource.get("Condition")
        if condition is not None and condition not in self._condition_defs:
            yield f"Resources.{logical_id}.Condition: unknown condition {condition!r}"

    def resource_dependencies(self, logical_id: str) -> set[str]:
        """Resources ``logical_id`` needs created first (Refs, GetAtts, Subs, DependsOn)."""
        resource = self.resources[logical_id]
        names = references({k: v for k, v in resource.items() if k != "Condition"})
        depends = resource.get("DependsOn") or []
        names |= {depends} if isinstance(depends, str) else set(depends)
        return {name for name in names if name in self.resources}

    def creation_order(self) -> list[str]:
        """Enabled resources in dependency order; a cycle is an error, as in CloudFormation."""
        enabled = [r for r in self.resources if self.resource_enabled(r)]
        # A reference to a resource whose condition is false is allowed only in a branch not
        # taken; resolve() raises for the others.
        graph = {r: sorted(self.resource_dependencies(r) & set(enabled)) for r in enabled}
        try:
            return list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as error:
            raise _circular(list(reversed(error.args[1]))) from None

    def bind(self, logical_id: str, ref: Any, attributes: Mapping[str, Any] | None = None) -> None:
        """Record what a created resource's Ref and GetAtt return."""
        self._bindings[logical_id] = _Binding(ref=ref, attributes=dict(attributes or {}))

    def _ref(self, name: str, *, where: str) -> Any:
        if name in PSEUDO_PARAMETERS:
            return self.pseudo.values()[name]
        if name in self.parameters:
            return self.parameters[name]
        if name not in self.resources:
            raise TemplateError(f"{where}: Ref to unknown name {name!r}")
        return self._binding(name, where=f"{where}: Ref to {name}").ref

    def _binding(self, name: str, *, where: str) -> _Binding:
        if not self.resource_enabled(name):
            condition = self.resources[name].get("Condition")
            raise TemplateError(f"{where}, which is not created (condition {condition} is false)")
        binding = self._bindings.get(name)
        if binding is None:
            raise TemplateError(f"{where} before {name} was created")
        return binding

    def _getatt(self, name: str, attribute: str, *, where: str) -> Any:
        if name not in self.resources:
            raise TemplateError(f"{where}: GetAtt on unknown resource {name!r}")
        binding = self._binding(name, where=f"{where}: GetAtt {name}.{attribute}")
        if attribute not in binding.attributes:
            raise TemplateError(
                f"{where}: {name} ({self.resources[name]['Type']}) has no attribute "
                f"{attribute!r}; it has {sorted(binding.attributes)}"
            )
        return binding.attributes[attribute]

    def resolve(self, node: Any, *, where: str = "template") -> Any:
        """Evaluate every intrinsic in ``node``; ``AWS::NoValue`` removes keys/items."""
        if isinstance(node, list):
            items = [self.resolve(item, where=f"{where}[{i}]") for i, item in enumerate(node)]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            key, arg = next(iter(node.items()))
            if (
                key == "Ref"
                or key.startswith("Fn::")
                or (key == "Condition" and isinstance(arg, str))
            ):
                return self._intrinsic(key, arg, where=where)
        resolved = {key: self.resolve(value, where=f"{where}.{key}") for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _intrinsic(self, key: str, arg: Any, *, where: str) -> Any:
        at = f"{where} ({key})"
        if key in _UNSUPPORTED:
            raise TemplateError(f"{at}: {key} is not supported by the local cloud")
        function = _INTRINSIC_FUNCTIONS.get(key)
        if function is None:
            raise TemplateError(f"{at}: unknown intrinsic function {key}")
        return function(self, arg, at)

    def _fn_ref(self, arg: Any, at: str) -> Any:
        if not isinstance(arg, str):
            raise TemplateError(f"{at}: Ref takes a name, got {arg!r}")
        return self._ref(arg, where=at)

    def _fn_getatt(self, arg: Any, at: str) -> Any:
        name, attribute = _arguments(
            arg.split(".", 1) if isinstance(arg, str) else arg, 2, "[Resource, Attribute]", at
        )
        return self._getatt(str(name), str(self.resolve(attribute, where=at)), where=at)

    def _fn_if(self, arg: Any, at: str) -> Any:
        condition, if_true, if_false = _arguments(arg, 3, "[Condition, IfTrue, IfFalse]", at)
        return self.resolve(if_true if self.condition(str(condition)) else if_false, where=at)

    def _fn_equals(self, arg: Any, at: str) -> bool:
        left, right = self._resolved_arguments(arg, 2, "[Value1, Value2]", at)
        return bool(_normal(left) == _normal(right))

    def _fn_not(self, arg: Any, at: str) -> bool:
        (condition,) = _arguments(arg, 1, "[Condition]", at)
        return not self._eval_condition(condition, where=at)

    def _conditions_of(self, arg: Any, at: str) -> list[bool]:
        if not isinstance(arg, list) or not 2 <= len(arg) <= 10:
            raise TemplateError(f"{at}: expected 2 to 10 conditions")
        return [self._eval_condition(v, where=at) for v in arg]

    def _resolved_arguments(self, arg: Any, count: int, expected: str, at: str) -> list[Any]:
        return [self.resolve(v, where=at) for v in _arguments(arg, count, expected, at)]

    def _fn_join(self, arg: Any, at: str) -> str:
        delimiter, values = self._resolved_arguments(arg, 2, "[Delimiter, [Values]]", at)
        if not isinstance(values, list):
            raise TemplateError(f"{at}: the values to join must be a list, got {values!r}")
        return str(delimiter).join(scalar_text(v, where=at) for v in values)

    def _fn_select(self, arg: Any, at: str) -> Any:
        index, values = self._resolved_arguments(arg, 2, "[Index, [Values]]", at)
        if not isinstance(values, list) or not 0 <= int(index) < len(values):
            raise TemplateError(f"{at}: index {index} out of range of {values!r}")
        return values[int(index)]

    def _fn_split(self, arg: Any, at: str) -> list[str]:
        delimiter, text = self._resolved_arguments(arg, 2, "[Delimiter, String]", at)
        return scalar_text(text, where=at).split(str(delimiter))

    def _fn_base64(self, arg: Any, at: str) -> str:
        text = scalar_text(self.resolve(arg, where=at), where=at)
        return base64.b64encode(text.encode()).decode()

    def _fn_find_in_map(self, arg: Any, at: str) -> Any:
        keys = _arguments(arg, 3, "[MapName, TopLevelKey, SecondLevelKey]", at)
        names = [scalar_text(self.resolve(v, where=at), where=at) for v in keys]
        try:
            return self.mappings[names[0]][names[1]][names[2]]
        except (KeyError, TypeError):
            raise TemplateError(f"{at}: no mapping entry {names}") from None

    def _fn_length(self, arg: Any, at: str) -> int:
        values = self.resolve(arg, where=at)
        if not isinstance(values, list):
            raise TemplateError(f"{at}: expected a list")
        return len(values)

    def _fn_sub(self, arg: Any, at: str) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            text = arg[0]
            variables = {k: self.resolve(v, where=f"{at}.{k}") for k, v in arg[1].items()}
        else:
            raise TemplateError(f"{at}: expected a string or [String, {{Variables}}]")
        if not isinstance(text, str):
            raise TemplateError(f"{at}: the string to substitute must be a string")

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            value = self._sub_value(expression, variables, where=at)
            return scalar_text(value, where=f"{at} ${{{expression}}}")

        return _SUB_VARIABLE.sub(substitute, text)

    def _sub_value(self, expression: str, variables: Mapping[str, Any], *, where: str) -> Any:
        if expression in variables:
            return variables[expression]
        if "." in expression and expression not in self.parameters:
            resource, _, attribute = expression.partition(".")
            return self._getatt(resource, attribute, where=where)
        return self._ref(expression, where=where)

    def outputs(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for name, output in self.outputs_section.items():
            condition = (output or {}).get("Condition")
            if condition is not None and not self.condition(str(condition)):
                continue
            value = self.resolve((output or {}).get("Value"), where=f"Outputs.{name}")
            result[name] = scalar_text(value, where=f"Outputs.{name}")
        return result


_INTRINSIC_FUNCTIONS: dict[str, Callable[[Template, Any, str], Any]] = {
    "Ref": Template._fn_ref,
    "Condition": lambda t, arg, at: t.condition(str(arg)),
    "Fn::GetAtt": Template._fn_getatt,
    "Fn::Sub": Template._fn_sub,
    "Fn::If": Template._fn_if,
    "Fn::Equals": Template._fn_equals,
    "Fn::Join": Template._fn_join,
    "Fn::Select": Template._fn_select,
    "Fn::Split": Template._fn_split,
    "Fn::Not": Template._fn_not,
    "Fn::And": lambda t, arg, at: all(t._conditions_of(arg, at)),
    "Fn::Or": lambda t, arg, at: any(t._conditions_of(arg, at)),
    "Fn::Base64": Template._fn_base64,
    "Fn::FindInMap": Template._fn_find_in_map,
    "Fn::GetAZs": lambda t, arg, at: [f"{t.pseudo.region}{zone}" for zone in "abc"],
    "Fn::ToJsonString": lambda t, arg, at: json.dumps(
        t.resolve(arg, where=at), separators=(",", ":")
    ),
    "Fn::Length": Template._fn_length,
}
INTRINSICS = frozenset(_INTRINSIC_FUNCTIONS)


def _arguments(arg: Any, count: int, expected: str, at: str) -> list[Any]:
    if not isinstance(arg, list) or len(arg) != count:
        raise TemplateError(f"{at}: expected {expected}, got {arg!r}")
    return arg


def _circular(cycle: list[str]) -> TemplateError:
    reason = (
        " (a resource may not refer to itself; Globals apply to every function, including the"
        " one they name)"
        if len(set(cycle)) == 1
        else ""
    )
    return TemplateError("circular dependency between resources: " + " -> ".join(cycle) + reason)


def _coerce_parameter(name: str, spec: Mapping[str, Any], raw: Any) -> Any:
    ptype = str(spec.get("Type", "String"))
    if ptype.startswith("AWS::SSM::Parameter::Value<"):
        raise TemplateError(f"parameter {name}: type {ptype} is not supported locally")
    value = _parameter_value(name, ptype, raw)
    for item in value if isinstance(value, list) else [value]:
        if ptype in ("Number", "List<Number>"):
            _check_number(name, spec, item)
        _check_text(name, spec, item)
    return value


def _parameter_value(name: str, ptype: str, raw: Any) -> str | list[str]:
    if ptype.startswith("List<") or ptype == "CommaDelimitedList":
        if isinstance(raw, list | tuple):
            return [str(item) for item in raw]
        return [item.strip() for item in str(raw).split(",")] if str(raw) != "" else []
    if isinstance(raw, list | tuple):
        raise TemplateError(f"parameter {name} ({ptype}) got a list: {raw!r}")
    return str(raw).lower() if isinstance(raw, bool) else str(raw)


def _check_number(name: str, spec: Mapping[str, Any], item: str) -> None:
    try:
        number = float(item)
    except ValueError:
        raise TemplateError(f"parameter {name}: {item!r} is not a Number") from None
    if "MinValue" in spec and number < float(spec["MinValue"]):
        raise TemplateError(f"parameter {name}: {item} < MinValue {spec['MinValue']}")
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        raise TemplateError(f"parameter {name}: {item} > MaxValue {spec['MaxValue']}")


def _check_text(name: str, spec: Mapping[str, Any], item: str) -> None:
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


def _mappings(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in ``node``, ``node`` itself included, at any depth."""
    if isinstance(node, list):
        for item in node:
            yield from _mappings(item)
    elif isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _mappings(value)


def references(node: Any) -> set[str]:
    """Every resource, parameter or pseudo parameter ``node`` refers to (all branches)."""
    found: set[str] = set()
    for mapping in (m for m in _mappings(node) if len(m) == 1):
        ((key, value),) = mapping.items()
        if key == "Ref" and isinstance(value, str):
            found.add(value)
        elif key == "Fn::GetAtt":
            parts = value.split(".") if isinstance(value, str) else value
            if isinstance(parts, list) and parts and isinstance(parts[0], str):
                found.add(parts[0])
        elif key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1] or {})
            for expression in _SUB_VARIABLE.findall(str(text)):
                if not expression.startswith("!") and expression not in variables:
                    found.add(
                        expression.partition(".")[0] if "::" not in expression else expression
                    )
    return found


def _intrinsic_keys(node: Any) -> set[str]:
    return {
        key
        for mapping in _mappings(node)
        if len(mapping) == 1 and (key := next(iter(mapping))).startswith("Fn::")
    }


def _if_conditions(node: Any) -> Iterable[str]:
    for mapping in _mappings(node):
        branches = mapping.get("Fn::If")
        if isinstance(branches, list) and branches:
            yield str(branches[0])
        if len(mapping) == 1 and isinstance(mapping.get("Condition"), str):
            yield mapping["Condition"]


def _normal(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


def scalar_text(value: Any, *, where: str) -> str:
    """A value CloudFormation turns into a string (true/false for booleans), else an error."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"{where}: expected a string, got {value!r}")
