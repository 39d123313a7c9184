"""template.yaml is generated (`make template`) from template/base.yaml and the route table
template/functions.yaml: the committed file is what they generate, and the generator refuses a bad table."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    """template/generate.py, loaded by path (``template`` is no package name to import)."""
    spec = importlib.util.spec_from_file_location("dora_template_generate", ROOT / "template" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generator()


def test_the_committed_template_is_what_make_template_generates() -> None:
    expected = generate.generate()
    committed = (ROOT / "template.yaml").read_text()
    if committed != expected:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                "template.yaml (committed)",
                "template.yaml (generated)",
                n=1,
            )
        )
        pytest.fail(
            "template.yaml is not what template/base.yaml and template/functions.yaml generate: run `make template` "
            f"(and edit those two files, not template.yaml)\n{diff[:4000]}",
            pytrace=False,
        )


_BASE = (ROOT / "template" / "base.yaml").read_text()
_ENTRY = """
- section: s
  functions:
    OneFunction:
      handler: dora_insights.handlers.meta.health
      role: ApiReadRole
      routes:
        Api: GET /one
"""


def test_a_table_entry_becomes_a_function_block_in_place_of_the_marker() -> None:
    text = generate.render(_BASE, _ENTRY)
    assert generate.MARKER not in text.splitlines()
    block = text[text.index("  OneFunction:") :].split("\n\n")[0]
    assert block.splitlines() == [
        "  OneFunction:",
        "    Type: AWS::Serverless::Function",
        "    Properties:",
        "      Handler: dora_insights.handlers.meta.health",
        "      Role: !GetAtt ApiReadRole.Arn",
        "      Events:",
        "        Api:",
        "          Type: HttpApi",
        "          Properties:",
        "            ApiId: !Ref HttpApi",
        "            Path: /one",
        "            Method: GET",
        "    Metadata:",
        "      BuildMethod: makefile",
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (_ENTRY + "    OneFunction:\n      handler: x\n", "given twice"),
        (_ENTRY.replace("role: ApiReadRole", "role: AdminRole"), "none of template/base.yaml.s roles"),
        (_ENTRY.replace("routes:", "timeout: 30\n      timout: 30\n      routes:"), "unknown field"),
        (_ENTRY + _ENTRY.split("functions:\n")[1].replace("OneFunction", "TwoFunction"), "already OneFunction"),
        (_ENTRY.replace("Api: GET /one", "Api: FETCH /one"), "not 'METHOD /path'"),
        (_ENTRY.replace("OneFunction", "Table"), "logical id used twice"),
        (_ENTRY.replace("routes:", "memory: big\n      routes:"), "positive whole number"),
        (_ENTRY.replace("routes:", "environment:\n        lower: x\n      routes:"), "UPPER_SNAKE_CASE"),
        (_ENTRY.replace("routes:", 'environment:\n        KEY: "!Sub x"\n      routes:'), "neither"),
        (_ENTRY.replace("routes:", 'environment:\n        KEY: "!Ref Nowhere"\n      routes:'), "not a resource"),
    ],
)
def test_the_generator_refuses_a_bad_table(table: str, message: str) -> None:
    with pytest.raises(generate.TableError, match=message):
        generate.render(_BASE, table)


def test_a_table_entry_gets_environment_variables_of_its_own_with_intrinsics_unquoted() -> None:
    own = 'environment:\n        KEY_ARN: "!GetAtt Table.Arn"\n        MODE: "on"\n      routes:'
    block = generate.render(_BASE, _ENTRY.replace("routes:", own)).split("  OneFunction:")[1].split("\n\n")[0]
    variables = '      Environment:\n        Variables:\n          KEY_ARN: !GetAtt Table.Arn\n          MODE: "on"\n'
    assert variables in block
