"""Hypothesis strategies shared by the fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)


def json_values(*, width: int, key_size: int, leaves: int) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars nested in lists and objects of up to `width` items."""
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=width),
            st.dictionaries(st.text(max_size=key_size), inner, max_size=width),
        ),
        max_leaves=leaves,
    )
