import math

import pytest

import optiroute
from optiroute import InvalidPreferencesError, OptiRouteError, Preferences, UnknownProfileError
from optiroute.schema.preferences import DIMENSIONS, PROFILES, coerce_preferences, current_preferences


def test_profiles_cover_the_five_named_profiles():
    assert set(PROFILES) == {"balanced", "quality-first", "cost-effective", "latency-first", "ethically-aligned"}
    for name, p in PROFILES.items():
        assert p.name == name
        assert p.accuracy > 0, "every profile keeps some weight on accuracy"
        assert math.isclose(sum(p.normalized().values()), 1.0)


def test_profile_names_are_forgiving_about_case_and_separators():
    assert coerce_preferences("Cost_Effective") is PROFILES["cost-effective"]
    assert coerce_preferences(" quality first ") is PROFILES["quality-first"]


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5, "high", None, True])
def test_bad_weights_raise_our_error(bad):
    with pytest.raises(InvalidPreferencesError) as err:
        Preferences(accuracy=bad)
    assert "accuracy" in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, OptiRouteError)


def test_all_zero_weights_rejected_with_a_fix():
    with pytest.raises(InvalidPreferencesError, match="positive weight"):
        Preferences()


def test_unknown_dimension_and_profile():
    with pytest.raises(InvalidPreferencesError, match="speed"):
        coerce_preferences({"speed": 1.0})
    with pytest.raises(UnknownProfileError, match="choose one of"):
        coerce_preferences("cheapest-please")
    with pytest.raises(InvalidPreferencesError):
        coerce_preferences(42)  # type: ignore[arg-type]


def test_mapping_can_start_from_a_profile():
    p = coerce_preferences({"profile": "cost-effective", "latency": 0.9})
    assert p.latency == 0.9 and p.cost == PROFILES["cost-effective"].cost and p.name is None


def test_scope_applies_only_when_nothing_explicit_is_given():
    default = PROFILES["balanced"]
    assert coerce_preferences(None, default=default) is default
    with optiroute.preferences("latency-first") as scoped:
        assert current_preferences() is scoped
        assert coerce_preferences(None, default=default) is scoped
        assert coerce_preferences("quality-first") is PROFILES["quality-first"]
    assert current_preferences() is None


def test_label_names_top_dimensions():
    assert Preferences(cost=1.0, accuracy=0.2).label() == "cost+accuracy"
    assert set(Preferences(accuracy=1).weights()) == set(DIMENSIONS)
