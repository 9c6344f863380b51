"""List prices from a maintained library: ``genai-prices`` (pydantic's price tables, bundled offline).

Cards take their prices from the library for every model it knows, so a card never carries a price
that went stale by hand; models the library lacks keep a hand-written price with its source. The
library's long-context tiers (``gemini-2.5-pro`` above 200k input tokens, ``claude-sonnet-4-5``
above 200k) become :class:`~optiroute.catalog.registry.PriceTier` entries, and the call's input size
selects the tier when a call is priced.

The library is read from its installed copy only (never updated over the network here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

__all__ = ["LibraryPrice", "PROVIDERS", "library_price", "library_price_ref", "library_version"]

#: The card's provider -> the library's provider id (a card of another provider is not looked up:
#: an open-weights card's price is a hosting estimate, not one vendor's list price).
PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "google": "google", "xai": "x-ai", "deepseek": "deepseek",
    "mistral": "mistral", "meta": "meta", "qwen": "together", "moonshot": "moonshotai", "cohere": "cohere",
}


@dataclass(frozen=True)
class LibraryPrice:
    """One model's prices as the library states them (USD per million tokens)."""

    provider: str
    model_id: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    tiers: list[tuple[int, float, float]] = field(default_factory=list)  # (min input tokens, in, out)
    context_window: int | None = None

    @property
    def source(self) -> str:
        return f"genai-prices {library_version()} provider {self.provider!r} model {self.model_id!r}"

    def card_fields(self) -> dict[str, Any]:
        """A model card's price fields (base prices and long-context tiers) as the library states them."""
        return {
            "input_usd_per_mtok": self.input_usd_per_mtok,
            "output_usd_per_mtok": self.output_usd_per_mtok,
            "price_tiers": [{"min_input_tokens": s, "input_usd_per_mtok": i, "output_usd_per_mtok": o}
                            for s, i, o in self.tiers],
        }


def library_version() -> str:
    """The installed genai-prices version (``"absent"`` when it is not installed)."""
    try:
        from genai_prices import __version__
    except ImportError:
        return "absent"
    return str(__version__)


def _split(value: Any) -> tuple[float | None, list[tuple[int, float]]]:
    if value is None:
        return None, []
    if isinstance(value, Decimal | int | float):
        return float(value), []
    base = getattr(value, "base", None)
    tiers = [(int(t.start), float(t.price)) for t in getattr(value, "tiers", [])]
    return (None if base is None else float(base)), tiers


def library_price_ref(provider_id: str, model_ref: str) -> LibraryPrice | None:
    """The library's price of exactly ``model_ref`` in its provider ``provider_id`` (``openrouter``,
    ``deepseek``, ...), for cards whose price is one host's listing."""
    try:
        from genai_prices import data
    except ImportError:
        return None
    for prov in data.providers:
        if prov.id == provider_id:
            info = prov.find_model(model_ref)
            return None if info is None else _price_of(prov.id, info)
    return None


def _price_of(provider_id: str, info: Any) -> LibraryPrice | None:
    price = info.get_prices(datetime.now(timezone.utc))
    pin, tin = _split(getattr(price, "input_mtok", None))
    pout, tout = _split(getattr(price, "output_mtok", None))
    if pin is None or pout is None:
        return None
    starts = sorted({s for s, _ in tin} | {s for s, _ in tout})
    tiers = []
    for s in starts:
        ti = max((p for st, p in tin if st <= s), default=pin)
        to = max((p for st, p in tout if st <= s), default=pout)
        tiers.append((s, ti, to))
    return LibraryPrice(provider_id, info.id, pin, pout, tiers, info.context_window)


def library_price(name: str, provider: str | None = None) -> LibraryPrice | None:
    """The library's price of ``name`` (``None`` when it does not know the model or is absent).

    Args:
        name: a model name as callers write it (the library matches dated and aliased ids itself).
        provider: the card's provider; when given, only that provider's table is searched (a model
            offered by several hosts has one list price per host).
    """
    try:
        from genai_prices import data
    except ImportError:
        return None
    wanted = PROVIDERS.get(provider or "") if provider else None
    if provider and wanted is None:
        return None
    ref = name.strip().lower()
    if "/" in ref:
        ref = ref.rsplit("/", 1)[1]
    for prov in data.providers:
        if wanted is not None and prov.id != wanted:
            continue
        if wanted is None and prov.id not in PROVIDERS.values():
            continue
        info = prov.find_model(ref)
        found = None if info is None else _price_of(prov.id, info)
        if found is not None:
            return found
    return None
