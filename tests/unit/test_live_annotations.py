"""Modules that define pydantic models keep their annotations live (``domain/base.py``): with
``from __future__ import annotations`` pydantic compiles and evaluates every field's annotation when
the class is created, a cost each function pays at its cold start (``make bench``)."""

from __future__ import annotations
import __future__

import importlib
import pkgutil
from types import ModuleType

import pydantic

import dora_insights


def _modules() -> list[ModuleType]:
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(dora_insights.__path__, f"{dora_insights.__name__}.")
    ]


def _defines_models(module: ModuleType) -> bool:
    return any(
        isinstance(value, type) and issubclass(value, pydantic.BaseModel) and value.__module__ == module.__name__
        for value in vars(module).values()
    )


def test_no_module_defining_models_postpones_its_annotations() -> None:
    with_models = [m for m in _modules() if _defines_models(m)]
    postponed = [m.__name__ for m in with_models if isinstance(vars(m).get("annotations"), __future__._Feature)]
    assert len(with_models) > 20  # the walk found the package's model modules
    assert postponed == []


def test_the_check_sees_a_postponing_module() -> None:
    module = ModuleType("probe")
    exec(  # noqa: S102 - a fixed probe module
        "from __future__ import annotations\nimport pydantic\nclass M(pydantic.BaseModel):\n    x: int\n",
        module.__dict__,
    )
    assert _defines_models(module)
    assert isinstance(vars(module).get("annotations"), __future__._Feature)
