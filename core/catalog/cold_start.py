"""Cold start: per-domain accuracy of a model that has no per-prompt outcomes, from its card.

A user's new candidate (a fresh API model, a local fine-tune) has no rows in any outcome set, so the
kNN and learned predictors know nothing of it and routing falls back to its card prior
(:func:`optiroute.quality.priors.card_prior`), which needs ``accuracy_by_domain``. This module maps
*model-level* metrics to that per-domain accuracy with a regression learned on the models that have
both: the design notes' "model side mapped from its card" of the item-response view.

Features (:func:`card_features`): the card's kind (api / chat / base), log prices, log context
window and its *sourced* 0..1 metrics (helpfulness = AlpacaEval, honesty = TruthfulQA, steerability =
IFEval, harmlessness, creativity; a metric the card lists as imputed counts as missing, so nothing
derived from the target leaks in), plus optional raw metrics (``params_b``, ``arena_elo``,
``mt_bench`` as in ``model_metrics.csv``). Missing values are filled with the training mean and
flagged by an indicator column. The target is the logit of each domain's accuracy; the model is a
multi-output ridge regression on standardised features whose strength is chosen by leave-one-out
over the training models (closed form, cheap at tens of models).

``benchmarks/cold_start.py`` measures it by leaving each MMLU-Pro model out in turn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from optiroute.catalog.registry import Registry
from optiroute.errors import InvalidInputError

if TYPE_CHECKING:
    from optiroute.catalog.registry import ModelCard, Registry

__all__ = ["AbilityMap", "RAW_METRICS", "card_features", "gpqa_level_map", "level_map", "predict_card_domains"]

#: Raw model-level metrics (columns of ``model_metrics.csv``) used when given.
RAW_METRICS = ("params_b", "arena_elo", "mt_bench")
CARD_METRICS = ("helpfulness", "honesty", "steerability", "harmlessness", "creativity")
ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def card_features(card: ModelCard, raw: Mapping[str, Any] | None = None) -> dict[str, float | None]:
    """Model-level features of one card (``None`` = unknown).

    Args:
        card: the model card (its accuracy fields are never used: they are the target).
        raw: optional raw metrics by ``model_metrics.csv`` column name (``params_b``, ...).
    """
    def num(v: Any) -> float | None:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return f if math.isfinite(f) else None

    feats: dict[str, float | None] = {
        "kind_api": float(card.kind == "api"),
        "kind_base": float(card.kind == "base"),
        "log_input_price": math.log10(card.input_usd_per_mtok + 1e-3),
        "log_output_price": math.log10(card.output_usd_per_mtok + 1e-3),
        "log_context": None if "context_window" in card.imputed else math.log2(card.context_window),
    }
    for m in CARD_METRICS:
        feats[m] = None if m in card.imputed or not card.known(m) else float(card.metrics[m])
    raw = raw or {}
    p = num(raw.get("params_b"))
    feats["log_params_b"] = None if p is None or p <= 0 else math.log10(p)
    feats["arena_elo"] = num(raw.get("arena_elo"))
    feats["mt_bench"] = num(raw.get("mt_bench"))
    return feats


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.01, 0.99)
    return np.log(p / (1 - p))


class AbilityMap:
    """Ridge regression from card features to per-domain accuracy (see the module docstring).

    Build one with :meth:`fit`; :meth:`predict` takes feature dicts from :func:`card_features`.
    """

    def __init__(self, names: list[str], domains: list[str], fill: np.ndarray, mu: np.ndarray,
                 sd: np.ndarray, coef: np.ndarray, intercept: np.ndarray, alpha: float) -> None:
        self.names, self.domains = names, domains
        self.fill, self.mu, self.sd = fill, mu, sd
        self.coef, self.intercept, self.alpha = coef, intercept, alpha

    @staticmethod
    def _raw(feats: Sequence[Mapping[str, float | None]], names: list[str]) -> np.ndarray:
        return np.array([[np.nan if (v := f.get(n)) is None else float(v) for n in names] for f in feats],
                        dtype=np.float64).reshape(len(feats), len(names))

    def _design(self, raw: np.ndarray) -> np.ndarray:
        miss = np.isnan(raw)
        x = np.where(miss, self.fill[None, :], raw)
        x = np.concatenate([x, miss.astype(np.float64)], axis=1)
        return (x - self.mu) / self.sd

    @classmethod
    def fit(cls, feats: Sequence[Mapping[str, float | None]], accuracy: np.ndarray,
            domains: Sequence[str], *, alphas: Sequence[float] = ALPHAS) -> AbilityMap:
        """Fit on models that have both features and per-domain accuracy.

        Args:
            feats: one feature dict per model (:func:`card_features`).
            accuracy: (n_models, n_domains) accuracies in 0..1 (NaN: unknown; filled by the
                domain's mean).
            domains: column names of ``accuracy``.
            alphas: ridge strengths tried; the one with the lowest leave-one-out error is kept.

        Raises:
            InvalidInputError: fewer than 3 models, or shapes that do not match.
        """
        acc = np.asarray(accuracy, dtype=np.float64)
        if len(feats) < 3 or acc.shape != (len(feats), len(domains)):
            raise InvalidInputError(
                f"AbilityMap.fit needs >= 3 models with an (n_models, n_domains) accuracy matrix; got "
                f"{len(feats)} models and shape {acc.shape} for {len(domains)} domains."
            )
        names = sorted({k for f in feats for k in f})
        raw = cls._raw(feats, names)
        keep = ~np.isnan(raw).all(axis=0)  # a feature nobody has carries nothing
        names = [n for n, k in zip(names, keep, strict=True) if k]
        raw = raw[:, keep]
        with np.errstate(invalid="ignore"):
            fill = np.nan_to_num(np.nanmean(raw, axis=0))
            col_mean = np.nanmean(acc, axis=0)
        y = _logit(np.where(np.isnan(acc), col_mean[None, :], acc))
        tmp = cls(names, list(domains), fill, np.zeros(2 * len(names)), np.ones(2 * len(names)),
                  np.zeros((2 * len(names), len(domains))), np.zeros(len(domains)), 0.0)
        x = tmp._design(raw)
        mu, sd = x.mean(axis=0), x.std(axis=0)
        sd = np.where(sd > 1e-9, sd, 1.0)
        z = (x - mu) / sd
        yc = y - y.mean(axis=0)
        best = (math.inf, alphas[0])
        for a in alphas:  # closed-form leave-one-out residuals of ridge: e_i / (1 - h_ii)
            h = z @ np.linalg.solve(z.T @ z + a * np.eye(z.shape[1]), z.T)
            e = (yc - h @ yc) / (1 - np.diag(h))[:, None]
            best = min(best, (float((e**2).mean()), a))
        alpha = best[1]
        coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ yc)
        return cls(names, list(domains), fill, mu, sd, coef, y.mean(axis=0), alpha)

    def predict(self, feats: Sequence[Mapping[str, float | None]]) -> np.ndarray:
        """(n_models, n_domains) predicted accuracy in 0..1."""
        z = self._design(self._raw(feats, self.names))
        return 1.0 / (1.0 + np.exp(-(z @ self.coef + self.intercept)))


def _has_measured_domains(card: ModelCard) -> bool:
    return bool(card.accuracy_by_domain) and "accuracy_by_domain" not in card.imputed


#: Fewest cards with both a GPQA and an MMLU-Pro figure for the GPQA -> MMLU-Pro level map.
MIN_LEVEL_PAIRS = 6


def level_map(cards: Sequence[ModelCard], fact: str = "gpqa") -> tuple[float, float, int] | None:
    """``(a, b, n)`` of logit(MMLU-Pro) = a + b * ``fact``, least squares over the ``n`` cards whose
    ``facts`` hold both figures (``None`` below :data:`MIN_LEVEL_PAIRS`)."""
    pairs = [(c.facts[fact], c.facts["mmlu_pro"]) for c in cards if fact in c.facts and "mmlu_pro" in c.facts]
    if len(pairs) < MIN_LEVEL_PAIRS:
        return None
    x = np.array([p[0] for p in pairs])
    y = _logit(np.array([p[1] for p in pairs]))
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b), len(pairs)


def gpqa_level_map(cards: Sequence[ModelCard]) -> tuple[float, float, int] | None:
    """:func:`level_map` on GPQA (the figure most of today's models publish)."""
    return level_map(cards, "gpqa")


#: Published figures that set a card's level, most direct first (MMLU-Pro is the outcomes' scale).
LEVEL_FACTS = (("gpqa", "GPQA"), ("arena_elo", "Arena Elo"))


def _level(card: ModelCard, facts: Mapping[str, Any], reg: Registry,
           extra: Sequence[ModelCard]) -> tuple[float, str] | None:
    """The overall MMLU-Pro-scale accuracy a card's published figures give, and how."""
    if facts.get("mmlu_pro") is not None:
        return float(facts["mmlu_pro"]), f"its MMLU-Pro figure ({card.sources.get('mmlu_pro', 'given')})"
    for fact, label in LEVEL_FACTS:
        if facts.get(fact) is None:
            continue
        fit = level_map([*reg, *extra], fact)
        if fit is not None:
            a, b, n = fit
            level = 1.0 / (1.0 + math.exp(-(a + b * float(facts[fact]))))
            return level, (f"its {label} figure {float(facts[fact]):g} through logit(MMLU-Pro) = {a:.4g} + "
                           f"{b:.4g} x {label}, fitted on the {n} models with both published figures")
    return None


def predict_card_domains(card: ModelCard, registry: Registry | None = None,
                         raw: Mapping[str, Any] | None = None, *,
                         peers: Sequence[ModelCard] = ()) -> ModelCard:
    """A copy of ``card`` whose ``accuracy_by_domain`` (and ``accuracy``) come from its metrics.

    The mapping is fitted on the registry's cards that have measured per-domain accuracy (the
    bundled registry: the 31 MMLU-Pro models). Use it for a new model with no outcomes, so its card
    prior ranks it per domain instead of with one neutral number; fields filled this way are listed
    in ``imputed`` and their source says how. Raw figures come from each card's ``facts`` (the
    bundled cards carry parameters, Arena Elo and MT-Bench where sourced); ``raw`` adds to or
    overrides the new card's.
    """
    reg = registry if registry is not None else Registry.default()
    train = [c for c in reg if _has_measured_domains(c) and c.name != card.name]
    domains = sorted({d for c in train for d in c.accuracy_by_domain})
    acc = np.array([[c.accuracy_by_domain.get(d, np.nan) for d in domains] for c in train])
    amap = AbilityMap.fit([card_features(c, c.facts) for c in train], acc, domains)
    facts = {**card.facts, **(raw or {})}
    pred = amap.predict([card_features(card, facts)])[0]
    src = f"cold start: ridge map from card metrics, fitted on {len(train)} models with measured domains"
    level = _level(card, facts, reg, peers)
    if level is not None:
        # The published figure sets the level (MMLU-Pro is the scale of the bundled outcomes); the
        # ridge map gives the shape across domains. Shift every domain's logit by the same amount.
        z = _logit(pred)
        target = float(_logit(np.array([level[0]]))[0])
        for _ in range(20):  # the mean of the sigmoids meets the target (a few Newton-free steps)
            cur = 1.0 / (1.0 + np.exp(-z))
            gap = target - float(_logit(np.array([cur.mean()]))[0])
            if abs(gap) < 1e-4:
                break
            z = z + gap
        pred = 1.0 / (1.0 + np.exp(-z))
        src = f"cold start: level from {level[1]}; per-domain shape from the ridge map ({len(train)} models)"
    by_domain = {d: round(float(v), 4) for d, v in zip(domains, pred, strict=True)}
    return card.model_copy(update={
        "accuracy_by_domain": by_domain,
        "metrics": {**card.metrics, "accuracy": round(float(pred.mean()), 4)},
        "sources": {**card.sources, "accuracy_by_domain": src, "accuracy": src},
        "imputed": sorted(set(card.imputed) | {"accuracy_by_domain", "accuracy"}),
        "unknown": [m for m in card.unknown if m != "accuracy"],
    })
