"""How honest are the cards of today's models? Two checks that use no figure twice.

1. **Leave-one-model-out on the level map.** A new card's overall (MMLU-Pro-scale) accuracy comes
   from its published MMLU-Pro, else from its GPQA figure through ``logit(MMLU-Pro) = a + b * GPQA``
   fitted on the models that published both (:func:`optiroute.catalog.cold_start.gpqa_level_map`).
   Each of those models is left out in turn, the map is fitted on the others, and its MMLU-Pro is
   predicted from its GPQA alone: mean absolute error and Spearman over the held-out predictions.
2. **Rank correlation against a leaderboard not used to build the cards.** The Aider polyglot pass
   rate is stored on the cards as a fact but never feeds their accuracy; Spearman between each card's
   accuracy (overall, and in the ``computer science`` domain) and its Aider pass rate, over the cards
   that have one. Beside it, the same for the cards' list output price (the "dearer is better" baseline).

Reads only the bundled registry (no data set needed). Run: ``python benchmarks/cold_start_current.py``;
writes ``benchmarks/results/cold_start_current.md``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from optiroute.catalog.cold_start import gpqa_level_map
from optiroute.catalog.current import with_older_facts
from optiroute.catalog.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def spearman(a: list[float], b: list[float]) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    reg = with_older_facts(Registry.default())
    cards = list(reg)
    pairs = [c for c in cards if "gpqa" in c.facts and "mmlu_pro" in c.facts]
    rows, pred, true = [], [], []
    for held in pairs:
        fit = gpqa_level_map([c for c in pairs if c.name != held.name])
        assert fit is not None
        a, b, _ = fit
        p = 1.0 / (1.0 + math.exp(-(a + b * held.facts["gpqa"])))
        pred.append(p)
        true.append(held.facts["mmlu_pro"])
        rows.append(f"| {held.name} | {held.facts['gpqa']:.3f} | {held.facts['mmlu_pro']:.3f} | {p:.3f} |")
    mae = float(np.mean(np.abs(np.array(pred) - np.array(true))))
    rho = spearman(pred, true)

    coded = [c for c in cards if "aider_polyglot" in c.facts and c.known("accuracy")]
    aider = [c.facts["aider_polyglot"] for c in coded]
    acc = [c.metrics["accuracy"] for c in coded]
    cs = [c.accuracy_by_domain.get("computer science", c.metrics["accuracy"]) for c in coded]
    price = [c.output_usd_per_mtok for c in coded]
    lines = [
        "## Cold start for today's models: how honest are the new cards",
        "",
        "Produced by `benchmarks/cold_start_current.py` from the bundled registry alone.",
        "",
        f"**Level map, leave one model out** ({len(pairs)} models with both a published GPQA and MMLU-Pro "
        f"figure): MMLU-Pro predicted from GPQA alone has mean absolute error **{mae:.3f}** and Spearman "
        f"**{rho:.2f}** against the published MMLU-Pro.",
        "",
        "| held-out model | GPQA | MMLU-Pro (published) | predicted |",
        "|---|---|---|---|",
        *rows,
        "",
        f"**Against a leaderboard not used to build the cards** (Aider polyglot pass rate, {len(coded)} cards "
        "that have one): Spearman with the card's overall accuracy "
        f"**{spearman(acc, aider):.2f}**, with its `computer science` accuracy **{spearman(cs, aider):.2f}**; "
        f"the output list price alone gives {spearman(price, aider):.2f}.",
        "",
        "| card | Aider polyglot % | card accuracy | computer science | $ out / Mtok |",
        "|---|---|---|---|---|",
        *[f"| {c.name} | {c.facts['aider_polyglot']:g} | {c.metrics['accuracy']:.3f} | {x:.3f} | "
          f"{c.output_usd_per_mtok:g} |" for c, x in sorted(zip(coded, cs, strict=True),
                                                           key=lambda t: -t[0].facts["aider_polyglot"])],
        "",
        "Caveats: GPQA and MMLU-Pro are mostly vendor-reported (self-reported by the model's maker); the",
        "level map is a straight line in logit space over few models; Aider measures code editing, which",
        "card accuracy (MMLU-Pro-scale knowledge and reasoning) only partly reflects.",
        "",
    ]
    out = ROOT / "benchmarks" / "results" / "cold_start_current.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
