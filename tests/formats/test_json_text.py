"""formats.json_text writes exactly the standard library's indented JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from smartvault.formats import json_text

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    # every code point json escapes, including lone surrogates and line separators
    | st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF))
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(values, st.integers(min_value=0, max_value=3))
def test_encode_is_json_dumps_with_an_indent_of_two(value: Any, level: int) -> None:
    standalone = json.dumps(value, indent=2, ensure_ascii=False)

    assert json_text.encode(value) == standalone
    assert json_text.encode(value, level) == standalone.replace("\n", "\n" + "  " * level)


@pytest.mark.parametrize(
    "value",
    [
        {1: "a", None: "b", 2.5: "c", False: "d"},  # keys json turns into text
        {"nested": {3: [1, {"x": None}]}},
        [{}, [], "", 0, -0.0, 1e300, float("nan")],
    ],
)
def test_what_plans_never_hold_is_left_to_the_standard_library(value: Any) -> None:
    assert json_text.encode(value, 1) == json.dumps(value, indent=2, ensure_ascii=False).replace(
        "\n", "\n  "
    )


def test_what_json_cannot_write_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text.encode({"when": object()})
