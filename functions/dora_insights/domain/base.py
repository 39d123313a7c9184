"""The base of every pydantic model in the package (and of enums read in any case: ``CaselessEnum``).

``defer_build``: a model's validator is built when it is first used, not at import, so a
function pays only for the models its own route uses (measured in ``make bench``).

Modules that define models do not use ``from __future__ import annotations``: pydantic reads every
field's annotation when the class is created, and a string annotation must then be compiled and
evaluated (a ``compile`` per field, about 280 for the ingest route's models, 5 ms of its cold import),
whereas a live one was evaluated by the class body already. A method returning its own class says
``Self``; a name imported only for type checking is quoted.
"""

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose schema is built on first use."""

    model_config = ConfigDict(defer_build=True)


class CaselessEnum(StrEnum):
    """A string enum that also takes its values in any case (``lastmonth`` is ``LastMonth``), as the
    tools whose parameters it names read them (Octopus' enum binding ignores case)."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if isinstance(value, str):
            wanted = value.casefold()
            for member in cls:
                if member.value.casefold() == wanted:
                    return member
        return None
