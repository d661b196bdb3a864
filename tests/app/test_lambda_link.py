"""What the λ sweep's listener may put into a session: only a λ the page's own controls allow."""

import math

import pytest

from depara_core.session.link import MAX_LAMBDA
from pages._lambda_link import received_lambda


@pytest.mark.parametrize("value,expected", [(0.5, 0.5), (0, 0.0), ("2.5", 2.5), (MAX_LAMBDA, MAX_LAMBDA)])
def test_numbers_in_range_are_taken(value, expected) -> None:
    assert received_lambda(value) == expected


@pytest.mark.parametrize("value", [None, True, -0.1, MAX_LAMBDA + 1, math.inf, math.nan, "nan", "1e400", "x", [1.0], {"lam": 1}])
def test_anything_else_is_ignored(value) -> None:
    assert received_lambda(value) is None
