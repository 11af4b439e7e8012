"""The ``trainer`` config node checked against ``pytorch_lightning.Trainer``.

``conf/trainer/default.yaml`` lists every Trainer argument, so any can be set without a
``+``. Lightning checks few of them itself (``max_epochs="abc"`` constructs a Trainer,
then fails somewhere in the loop, or never under ``fast_dev_run``). Here the node is
merged into an OmegaConf structured config built from the Trainer's signature, so a
misspelt key or a value of the wrong type stops before anything is built, with one
message naming ``trainer.<key>``.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from dataclasses import field, make_dataclass
from typing import Any, Literal, Union

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ValidationError

__all__ = ["check_trainer_config", "trainer_parameters"]

PRIMITIVES = (int, float, bool, str)
# Built by train.py from their own config groups.
PASSED_SEPARATELY = ("logger", "callbacks")


def trainer_parameters() -> dict[str, inspect.Parameter]:
    """``pl.Trainer``'s keyword arguments by name."""
    signature = inspect.signature(pl.Trainer.__init__)
    return {name: p for name, p in signature.parameters.items() if name != "self"}


def _schema_type(hint: Any) -> Any:
    """The annotation as a type OmegaConf validates (primitive unions), else Any."""
    if hint in PRIMITIVES:
        return hint
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        members: list[Any] = []
        optional = False
        for arg in typing.get_args(hint):
            if arg is type(None):
                optional = True
                continue
            inner = _schema_type(arg)
            if inner is Any:
                return Any
            members += list(typing.get_args(inner)) or [inner]
        members = list(dict.fromkeys(m for m in members if m is not type(None)))
        if not members:
            return Any
        union = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
        return typing.Optional[union] if optional else union  # noqa: UP045
    if origin is Literal:
        kinds = list(dict.fromkeys(type(v) for v in typing.get_args(hint)))
        if all(kind in PRIMITIVES for kind in kinds):
            return kinds[0] if len(kinds) == 1 else Union[tuple(kinds)]  # noqa: UP007
    return Any


def _schema(parameters: dict[str, inspect.Parameter]) -> Any:
    try:
        hints = typing.get_type_hints(pl.Trainer.__init__)
    except Exception:  # unresolvable annotations: check the keys only
        hints = {}
    fields = []
    for name in parameters:
        kind = _schema_type(hints.get(name, Any))
        # Optional for the schema's own default (None); values are checked for type.
        optional = kind if kind is Any else typing.Optional[kind]  # noqa: UP045
        fields.append((name, optional, field(default=None)))
    return OmegaConf.structured(make_dataclass("TrainerArguments", fields))


def check_trainer_config(node: DictConfig) -> DictConfig:
    """Check ``cfg.trainer`` against the installed Trainer; return it ready to build.

    Keys the installed Lightning does not know are refused, unless their value is
    ``null`` (an argument of a newer Lightning left at its default: dropped).

    Raises:
        ValueError: ``trainer.<key>=<value>`` and what would fix it.
    """
    parameters = trainer_parameters()
    given = OmegaConf.to_container(node, resolve=True)
    assert isinstance(given, dict)
    checked: dict[str, Any] = {}
    for key, value in given.items():
        if key.startswith("_") or key in PASSED_SEPARATELY or key in parameters:
            checked[key] = value
        elif value is not None:
            close = difflib.get_close_matches(key, list(parameters), n=1)
            hint = f"did you mean trainer.{close[0]}? " if close else ""
            raise ValueError(
                f"trainer.{key}={value!r}: not an argument of "
                f"pytorch_lightning.Trainer {pl.__version__}; {hint}See "
                "conf/trainer/default.yaml for the arguments."
            )
    arguments = {k: v for k, v in checked.items() if not k.startswith("_")}
    try:
        OmegaConf.merge(_schema(parameters), arguments)
    except ValidationError as error:
        key = str(error.key)
        hint = typing.get_type_hints(pl.Trainer.__init__).get(key, "its type")
        reason = str(error).splitlines()[0]
        raise ValueError(
            f"trainer.{key}={arguments.get(key)!r}: {reason}; "
            f"pytorch_lightning.Trainer takes {_describe(hint)} (e.g. trainer.{key}="
            f"{_example(parameters[key], hint)})."
        ) from None
    return OmegaConf.create(checked)


def _describe(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    text = str(hint).replace("typing.", "")
    return text.replace("NoneType", "None")


def _example(parameter: inspect.Parameter, hint: Any) -> str:
    default = parameter.default
    if isinstance(default, bool):
        return str(default).lower()
    if default is not None and default is not inspect.Parameter.empty:
        return str(default)
    kinds = [k for k in typing.get_args(hint) or [hint] if k is not type(None)]
    return (
        f"<{kinds[0].__name__}>" if kinds and isinstance(kinds[0], type) else "<value>"
    )
