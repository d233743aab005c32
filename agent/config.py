"""Turn composed Hydra configs into plain, validated dataclasses (once, at the entry point)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

T = TypeVar("T")

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def to_dataclass(cls: type[T], cfg: DictConfig | dict[str, Any], where: str = "") -> T:
    """Build ``cls`` from a config node; nested dataclass fields are built recursively.

    Raises ``ValueError`` naming the unknown key and the valid ones (typos fail loudly), or
    the key whose value is not of its field's type (``eval.episodes=abc``), before any field
    reaches the dataclass. Integers given for float fields become floats.
    """
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown config key {prefix}{unknown[0]}: valid keys are {list(fields)}")
    kwargs = {}
    for name, value in data.items():
        if dataclasses.is_dataclass(hints[name]) and isinstance(value, dict):
            value = to_dataclass(hints[name], value, prefix + name)
        else:
            default = _default(fields[name])
            if value is not default and value != default:  # a default passes as it is
                value = _checked(value, hints[name], prefix + name, default)
        kwargs[name] = value
    return cls(**kwargs)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _checked(value: Any, hint: Any, key: str, default: Any) -> Any:
    """``value`` if it fits ``hint`` (ints widened to float); else one ``ValueError`` line."""
    ok, value = _fits(value, hint)
    if ok:
        return value
    what = _describe(hint)
    fix = f"pass {what}"
    if default is not dataclasses.MISSING:
        fix += f", e.g. {key}={_show(default)} (the default)"
    raise ValueError(f"{key}={_show(value)} is not {what}: {fix}")


def _fits(value: Any, hint: Any) -> tuple[bool, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, TypeVar):
        return True, value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return type(None) in args, value
        for arg in args:
            if arg is not type(None):
                ok, fitted = _fits(value, arg)
                if ok:
                    return True, fitted
        return False, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if hint is str:
        return isinstance(value, str), value
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        item = args[0] if args else Any
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                return False, value
            pairs = list(zip(value, args, strict=True))
        else:
            pairs = [(v, item) for v in value]
        fitted = []
        for v, h in pairs:
            ok, v = _fits(v, h)
            if not ok:
                return False, value
            fitted.append(v)
        return True, type(value)(fitted)
    if origin in (list, tuple):
        return False, value
    if origin is dict or hint is dict:
        return isinstance(value, dict), value
    return True, value  # a type this check does not know: the dataclass validates it


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(parts + (["null"] if type(None) in args else []))
    if origin in (list, tuple):
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    return _NAMES.get(hint, str(hint))


def _plural(hint: Any) -> str:
    if typing.get_origin(hint) in (list, tuple):
        args = typing.get_args(hint)
        return f"lists of {_plural(args[0])}" if args else "lists"
    plurals = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}
    return plurals.get(hint, str(hint))


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def check_device(key: str, value: str) -> None:
    """Refuse a torch device this process cannot use, in one line: ``cuda`` with a CPU build
    of torch (or no GPU), or a name torch does not know. ``auto`` always passes."""
    import torch

    if value == "auto":
        return
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError(f"{key}={value!r} is not a device: use cpu, cuda or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        why = "is a CPU build" if torch.version.cuda is None else "sees no GPU"
        raise ValueError(
            f"{key}={value} but this torch ({torch.__version__}) {why}: install the CUDA build "
            f"of torch (README, GPU users) or pass {key}=cpu (or auto)"
        )
