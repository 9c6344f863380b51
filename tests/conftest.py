"""Shared fixtures: one bundled default router and one router fitted on the MMLU-Pro slice per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FIXTURES = Path(__file__).parent / "fixtures"
SLICE = FIXTURES / "mmlu_slice"


@pytest.fixture(scope="session")
def default_router():
    from optiroute import Router

    return Router.default()


@pytest.fixture(scope="session")
def slice_router():
    from optiroute import Router

    return Router.fit(SLICE / "prompts.csv.gz", SLICE / "outcomes.csv.gz", SLICE / "prices.csv")


@pytest.fixture(scope="session")
def slice_test_prompts():
    import pandas as pd

    p = pd.read_csv(SLICE / "prompts.csv.gz", dtype={"prompt_id": str})
    return p[p["split"] == "test"].reset_index(drop=True)
