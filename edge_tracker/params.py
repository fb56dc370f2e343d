"""The one parameter-declaration helper every node uses.

Each parameter is a `P` (name, default, description, range or check). `declare()` declares them
with descriptors carrying the ranges (so `ros2 param describe` shows them and rclpy refuses
out-of-range values with a reason), checks the start-up values the same way, and validates live
changes in one set-parameters callback. Accepted values land in a `Params` object the node reads.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter

from edge_tracker.core.errors import ConfigurationError

# A check returns None when the value is fine, else the reason it is refused.
Check = Callable[[Any], Optional[str]]


class ParameterError(ConfigurationError):
    """A start-up parameter value the node cannot run with."""


@dataclass(frozen=True)
class P:
    name: str
    default: Any
    description: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[Sequence[Any]] = None
    check: Optional[Check] = None
    read_only: bool = False   # needs a restart to change (e.g. topics, source)
    any_type: bool = False    # accepts several types (e.g. classes: names or indices)
    type: Optional[int] = None  # ParameterType, needed when the default is an empty list


def _descriptor(p: P) -> ParameterDescriptor:
    # Dynamically typed so that a wrong type reaches _type_reason, which names the parameter;
    # rclpy's own check says only "Wrong parameter type, expected '2' got '4'".
    d = ParameterDescriptor(description=p.description, read_only=p.read_only,
                            dynamic_typing=True)
    if p.type is not None:
        d.type = p.type
    if p.min is not None and p.max is not None:
        if isinstance(p.default, bool):
            pass
        elif isinstance(p.default, int):
            d.integer_range = [IntegerRange(from_value=int(p.min), to_value=int(p.max), step=0)]
        elif isinstance(p.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(p.min),
                                                         to_value=float(p.max), step=0.0)]
    if p.choices is not None:
        d.additional_constraints = 'one of: ' + ', '.join(str(c) for c in p.choices)
    return d


def _type_reason(p: P, value: Any) -> Optional[str]:
    if p.any_type or p.type is not None:
        return None
    if value is None:
        return f'{p.name} cannot be unset'
    expected = type(p.default)
    if type(value) is expected or (expected is float and type(value) is int):
        return None
    return f'{p.name} takes a {expected.__name__}, got {value!r}'


def _reason(p: P, value: Any) -> Optional[str]:
    wrong_type = _type_reason(p, value)
    if wrong_type:
        return wrong_type
    if p.min is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and value < p.min:
        return f'{p.name}={value!r} is below its minimum {p.min}'
    if p.max is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and value > p.max:
        return f'{p.name}={value!r} is above its maximum {p.max}'
    if p.choices is not None and value not in p.choices:
        return f'{p.name}={value!r} is not one of {", ".join(map(str, p.choices))}'
    if p.check is not None:
        reason = p.check(value)
        if reason:
            return f'{p.name}={value!r}: {reason}'
    return None


class Params:
    """Current accepted values, as attributes (`params.conf`) or items (`params['conf']`)."""

    def __init__(self, values: Dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def declare(node: Node, specs: Sequence[P],
            on_change: Optional[Callable[[Dict[str, Any]], Optional[str]]] = None) -> Params:
    """Declares `specs` on `node` and returns their values.

    Raises ParameterError (start-up value out of range or refused by a check) with the reason.
    `on_change(changes)` is called with accepted live changes; it may return a reason to refuse
    them (for checks that need the node, such as loading a model).
    """
    by_name = {p.name: p for p in specs}
    try:
        declared = node.declare_parameters('', [(p.name, p.default, _descriptor(p))
                                                for p in specs])
    except Exception as exc:  # rclpy's InvalidParameterValue/Type exceptions
        raise ParameterError(str(exc)) from exc
    values = {}
    for param in declared:
        p = by_name[param.name]
        value = _plain(param.value)
        reason = _reason(p, value)
        if reason:
            raise ParameterError(reason)
        values[param.name] = _coerce(p, value)
    params = Params(values)

    def on_set(parameters: List[Parameter]) -> SetParametersResult:
        changes = {}
        for param in parameters:
            p = by_name.get(param.name)
            if p is None:
                continue
            value = _plain(param.value)
            reason = _reason(p, value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            changes[p.name] = _coerce(p, value)
        if changes and on_change is not None:
            reason = on_change(changes)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        params.__dict__.update(changes)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return params


def _coerce(p: P, value: Any) -> Any:
    """`fps:=30` means 30.0: an integer given for a float parameter becomes a float."""
    if isinstance(p.default, float) and type(value) is int:
        return float(value)
    return value


def _plain(value: Any) -> Any:
    """Parameter arrays come back as array.array or numpy; nodes want lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return list(value)


STRING_ARRAY = ParameterType.PARAMETER_STRING_ARRAY
DOUBLE_ARRAY = ParameterType.PARAMETER_DOUBLE_ARRAY
