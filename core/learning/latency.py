"""Online latency estimates: observed call times rescale each model card's latency estimate.

A card's latency (time to first token + output tokens / tokens per second) comes from published
measurements on someone else's hardware. What the caller's own calls take is better evidence, but a
single call is noisy: the first call to a local server often includes loading the weights, and one
slow call under load should not flip latency-first routing on its own. So the tracker keeps, per
model, an exponentially weighted mean of ``log(observed / estimated)`` and shrinks it towards 0 (the
card) with ``prior_weight`` pseudo-observations: after ``n`` calls the applied ratio is
``exp(n / (n + prior_weight) * mean_log_ratio)``. Ratios are compared on the log scale because
latency noise is multiplicative.

A model never observed borrows the pooled ratio of observed models in the same group (the card's
provider): local models served from one machine share its speed relative to the published figures,
so observing one of them says something about all of them, and a model is not favoured merely for
not having been measured yet.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

__all__ = ["MAX_RATIO", "LatencyTracker"]

#: The most one observation can say: observed / estimated is clipped to 1/MAX_RATIO..MAX_RATIO.
MAX_RATIO = 1000.0


@dataclass
class _Stat:
    n: float = 0.0
    mean_log: float = 0.0
    group: str | None = None


class LatencyTracker:
    """Thread-safe per-model observed/estimated latency ratios.

    Args:
        prior_weight: how many observations the card's own estimate is worth.
        decay: weight of the newest observation in the running mean (recent behaviour matters
            more: a model that slows down should be noticed within a few calls).
    """

    def __init__(self, *, prior_weight: float = 2.0, decay: float = 0.2) -> None:
        if prior_weight < 0 or not 0 < decay <= 1:
            raise ValueError("prior_weight must be >= 0 and decay in (0, 1]")
        self.prior_weight, self.decay = prior_weight, decay
        self._stats: dict[str, _Stat] = {}
        self._lock = threading.Lock()

    def observe(self, model: str, observed_s: float, estimated_s: float, *, group: str | None = None) -> None:
        """Record one call; non-finite or non-positive times are ignored (they carry no signal).

        Args:
            model: the card name.
            observed_s: wall time of the call.
            estimated_s: the card's estimate for the same number of output tokens.
            group: models that share hardware (the card's provider); see the module docstring.
        """
        if not (math.isfinite(observed_s) and observed_s > 0 and math.isfinite(estimated_s)):
            return
        ratio = observed_s / max(estimated_s, 1e-6)
        if not ratio > 0:  # a denormal time underflows to 0: no signal
            return
        # One observation moves the estimate by at most a factor of MAX_RATIO either way.
        log_ratio = max(-math.log(MAX_RATIO), min(math.log(ratio), math.log(MAX_RATIO)))
        with self._lock:
            st = self._stats.setdefault(model, _Stat())
            st.group = group
            # The first observation is the mean; later ones move it by `decay` (an EWMA), while the
            # effective count saturates at 1/decay so old evidence keeps fading.
            st.mean_log = log_ratio if st.n == 0 else (1 - self.decay) * st.mean_log + self.decay * log_ratio
            st.n = min(st.n + 1.0, 1.0 / self.decay)

    def ratio(self, model: str) -> float | None:
        """The multiplier applied to ``model``'s own card latency; ``None`` before any observation."""
        st = self._stats.get(model)
        if st is None or st.n == 0:
            return None
        return math.exp(st.n / (st.n + self.prior_weight) * st.mean_log)

    def group_ratio(self, group: str | None) -> float | None:
        """The pooled multiplier of the observed models in ``group`` (``None`` if none was observed)."""
        if group is None:
            return None
        stats = [s for s in list(self._stats.values()) if s.group == group and s.n > 0]
        if not stats:
            return None
        n = sum(s.n for s in stats)
        mean_log = sum(s.n * s.mean_log for s in stats) / n
        return math.exp(n / (n + self.prior_weight) * mean_log)

    def ratios(self, models: list[str], groups: list[str | None] | None = None) -> list[float]:
        """Multipliers for ``models`` in order: the model's own, else its group's, else 1.0."""
        if not self._stats:  # nothing observed yet: every card's own estimate stands
            return [1.0] * len(models)
        groups = groups if groups is not None else [None] * len(models)
        out = []
        for m, g in zip(models, groups, strict=True):
            r = self.ratio(m)
            if r is None:
                r = self.group_ratio(g)
            out.append(1.0 if r is None else r)
        return out

    def reset(self, model: str | None = None) -> None:
        """Forget observations of ``model`` (or of every model)."""
        with self._lock:
            if model is None:
                self._stats.clear()
            else:
                self._stats.pop(model, None)
