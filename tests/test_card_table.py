"""Candidate tables: what routing derives from the cards is computed once per candidate list, and a
card or registry edit reaches the next decision."""

import numpy as np
import pytest

from optiroute import Router
from optiroute.catalog.registry import ModelCard, Registry, card_revision
from optiroute.catalog.table import CardTable, card_names, derived, keyed_rows


def _card(name: str, **kw) -> ModelCard:
    return ModelCard(name=name, input_usd_per_mtok=1.0, output_usd_per_mtok=2.0, **kw)


def test_a_table_builds_each_derived_value_once_and_a_plain_list_every_time():
    cards = [_card("a"), _card("b")]
    table = CardTable(cards)
    calls = []

    def build():
        calls.append(1)
        return [c.name for c in cards]

    assert derived(table, "k", build) is derived(table, "k", build)
    assert len(calls) == 1
    derived(cards, "k", build)
    derived(cards, "k", build)
    assert len(calls) == 3
    assert card_names(table) == ["a", "b"] and list(table) == cards
    assert isinstance(table, tuple)  # immutable: the memo cannot go stale by a list edit


def test_keyed_rows_builds_each_distinct_key_once_in_input_order():
    memo: dict[str, np.ndarray] = {}
    built = []

    def row(k):
        built.append(k)
        return np.array([len(k), ord(k[0])], dtype=np.float32)

    out = keyed_rows(["law", "math", "law"], memo, row)
    assert out.shape == (3, 2)
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[1], [4, ord("m")])
    assert built == ["law", "math"]
    one = keyed_rows(["math"], memo, row)
    assert one.shape == (1, 2) and built == ["law", "math"]
    one[0, 0] = -1.0  # the caller's copy, not the memo's row
    assert memo["math"][0] == 4


def test_card_revision_moves_on_every_card_or_registry_edit():
    reg = Registry([_card("a"), _card("b")])
    steps = [
        lambda: setattr(reg.get("a"), "input_usd_per_mtok", 3.0),
        lambda: reg.add(_card("c")),
        lambda: reg.update("b", output_usd_per_mtok=9.0),
        lambda: reg.remove("c"),
        lambda: reg.set_capabilities("a", source="test", context_window=4096),
    ]
    for step in steps:
        before = card_revision()
        step()
        assert card_revision() != before
    before = card_revision()
    reg.resolve("a")  # reading never counts
    assert card_revision() == before


@pytest.fixture()
def own_router():
    """A default router with its own registry (every Router.default() loads its own)."""
    return Router.default()


def test_a_registry_edit_reaches_the_next_decision_for_the_same_candidates(own_router):
    cands = ["gpt-4o", "gpt-4o-mini"]
    text = "What is 2 + 2?"

    def cost(model):
        d = own_router.decide(text, candidates=cands, preferences="quality-first")
        return next(s.predicted_cost_usd for s in d.scores if s.model == model)

    before = cost("gpt-4o-mini")
    own_router.registry.update("gpt-4o-mini", input_usd_per_mtok=100.0, output_usd_per_mtok=400.0)
    assert cost("gpt-4o-mini") > 100 * before
    gpt4o = cost("gpt-4o")
    own_router.registry.get("gpt-4o").output_usd_per_mtok *= 10  # a field assigned in place
    assert cost("gpt-4o") > 5 * gpt4o
