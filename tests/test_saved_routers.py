"""Routers saved by the previous release still load and predict what they predicted then."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optiroute import Router
from optiroute.analysis.embedding import MiniLMEmbedder

SAVED = Path(__file__).parent / "fixtures" / "saved_router_0_1"
PROMPT = "What is the derivative of x^2?"
#: predict_quality([PROMPT]) as the release that saved them computed it (see SOURCE.md there).
BEFORE = {
    "knn": [0.6645, 0.4793, 0.7824, 0.3639],
    "mlp": [0.6892, 0.5103, 0.734, 0.2885],
}


@pytest.mark.parametrize("kind", sorted(BEFORE))
def test_a_router_saved_by_the_previous_release_loads_and_predicts_the_same(kind: str) -> None:
    # That release embedded with the torch encoder; the same encoder must give the same numbers.
    router = Router.load(SAVED / kind, embedder=MiniLMEmbedder(backend="torch", threads=1))
    assert router.predictor.kind == kind
    quality = router.predict_quality([PROMPT])[0]
    np.testing.assert_allclose(quality, BEFORE[kind], atol=1e-4)
    assert router.decide(PROMPT, preferences="balanced").model in router.models


@pytest.mark.parametrize("kind", sorted(BEFORE))
def test_with_the_default_int8_encoder_they_predict_within_its_tolerance(kind: str) -> None:
    quality = Router.load(SAVED / kind).predict_quality([PROMPT])[0]
    np.testing.assert_allclose(quality, BEFORE[kind], atol=0.01)  # vectors at cosine ~0.999 to torch's
