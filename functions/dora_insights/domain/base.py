"""The base of every pydantic model in the package.

``defer_build``: a model's validator is built when it is first used, not at import, so a
function pays only for the models its own route uses (measured in ``make bench``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose schema is built on first use."""

    model_config = ConfigDict(defer_build=True)
