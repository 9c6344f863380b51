import pytest

from optiroute import Constraints, InvalidConstraintsError


def test_constraints_validate_with_our_error():
    with pytest.raises(InvalidConstraintsError, match="max_cost_usd"):
        Constraints(max_cost_usd=-1)
    with pytest.raises(InvalidConstraintsError, match="needs_gpu"):
        Constraints(needs_gpu=True)
    with pytest.raises(InvalidConstraintsError):
        Constraints(max_latency_s=float("nan"))
    with pytest.raises(InvalidConstraintsError):
        Constraints.coerce("tools")  # type: ignore[arg-type]


def test_merge_takes_the_stricter_value():
    a = Constraints(max_cost_usd=0.01, allowed_models=("a", "b"), blocked_models=("x",))
    b = Constraints(max_cost_usd=0.005, needs_tools=True, allowed_models=("b", "c"), min_context=9000)
    m = a.merged(b)
    assert m.max_cost_usd == 0.005
    assert m.needs_tools and m.min_context == 9000
    assert m.allowed_models == ("b",)
    assert m.blocked_models == ("x",)
    assert Constraints.coerce(None).merged(None) == Constraints()
    assert Constraints.coerce({"needs_json": True}).needs_json
