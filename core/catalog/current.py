"""Cards for today's models, built from sourced public figures and the price library.

``core/data/current_models.json`` holds, per model, only figures somebody published, each with its
source (repository @ commit : path, row): the LMArena text score (2025-08-04 leaderboard), the
vendor-reported GPQA Diamond accuracy and the Aider polyglot pass rate. :func:`current_cards` turns
them into cards:

- prices, long-context tiers and the context window come from ``genai-prices``
  (:mod:`optiroute.catalog.prices`);
- the Arena score is re-anchored onto the bundled cards' 2024-12-31 Elo scale by the median shift of
  the anchor models present in both leaderboards (Arena scores drift as the pool changes);
- per-domain accuracy comes from the cold start (:func:`optiroute.catalog.cold_start.predict_card_domains`),
  which maps Arena Elo, GPQA, price and kind onto the MMLU-Pro-anchored scale;
- every other quality dimension has no published figure here, so it is marked unknown (neutral).

:func:`refresh_prices` re-reads the price library for every card it knows (``optiroute models
update``) and reports what changed.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from optiroute.catalog.cold_start import predict_card_domains
from optiroute.catalog.prices import LibraryPrice, library_price, library_price_ref
from optiroute.catalog.registry import ModelCard, Registry
from optiroute.errors import RegistryError

__all__ = ["CURRENT", "Change", "current_cards", "elo_shift", "price_of_card", "refresh_prices", "with_older_facts"]

_SOURCE = re.compile(r"genai-prices \S+ provider '([^']+)' model '([^']+)'")
CURRENT = Path(__file__).resolve().parent.parent / "data" / "current_models.json"


@dataclass(frozen=True)
class Change:
    """One field of one card that a refresh changed."""

    model: str
    field: str
    old: Any
    new: Any


def _load(path: Path = CURRENT) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("cards"), list):
        raise RegistryError(f"{path} must hold a mapping with a 'cards' list.")
    return data


def elo_shift(registry: Registry, data: dict[str, Any] | None = None) -> tuple[float, list[str]]:
    """Points to subtract from a 2025-08-04 Arena score to put it on the bundled 2024-12-31 scale:
    the median over anchor cards of (new score - the card's ``arena_elo`` fact); and the anchors."""
    data = data if data is not None else _load()
    diffs, used = [], []
    for a in data.get("elo_anchors", []):
        card = registry.get(a["card"]) if a["card"] in registry else None
        if card is not None and "arena_elo" in card.facts:
            diffs.append(float(a["arena_elo_2025_08_04"]) - card.facts["arena_elo"])
            used.append(card.name)
    if len(diffs) < 3:
        raise RegistryError("Too few Arena anchor models in the registry to re-anchor current Arena scores.")
    return float(statistics.median(diffs)), used


def with_older_facts(registry: Registry, data: dict[str, Any] | None = None) -> Registry:
    """A copy of ``registry`` whose older cards carry the sourced GPQA figures of ``current_models.json``
    (they train the cold start's map, so GPQA means the same thing for old and new cards)."""
    data = data if data is not None else _load()
    out = registry.copy()
    for row in data.get("older_card_facts", []):
        if row["name"] in out:
            card = out.get(row["name"])
            keys = [k for k in ("gpqa", "mmlu_pro") if row.get(k) is not None]
            out.update(card.name, facts={**card.facts, **{k: float(row[k]) for k in keys}},
                       sources={**card.sources, **{k: row[f"{k}_src"] for k in keys}})
    return out


def _capabilities(provider: str) -> dict[str, Any]:
    src = f"{provider} API reference: tool calling and JSON output are documented for this model"
    return {"supports_tools": True, "supports_json": True, "sources": {"supports_tools": src, "supports_json": src}}


def _price_for(row: dict[str, Any]) -> LibraryPrice | None:
    ref = row.get("price_ref")
    if ref:
        return library_price_ref(ref["provider"], ref["model"])
    lib = library_price(row["name"], row["provider"])
    for alias in row["aliases"].split(";") if row["aliases"] else []:
        lib = lib or library_price(alias, row["provider"])
    return lib


def price_of_card(card: ModelCard) -> LibraryPrice | None:
    """The library's price for ``card``: the reference its price source names, else its names."""
    m = _SOURCE.search(card.sources.get("price", ""))
    if m:
        return library_price_ref(m.group(1), m.group(2))
    lib = library_price(card.name, card.provider)
    for alias in card.aliases:
        lib = lib or library_price(alias, card.provider)
    return lib


def current_cards(registry: Registry, *, today: str | None = None) -> list[ModelCard]:
    """Cards for every model of ``current_models.json`` (see the module docstring).

    Args:
        registry: the registry whose cards with measured per-domain accuracy train the cold start
            (pass :func:`with_older_facts` of the bundled one).
        today: the date recorded as ``facts_date`` (default: today).
    """
    data = _load()
    shift, anchors = elo_shift(registry, data)
    stamp = today or date.today().isoformat()
    cards = []
    for row in data["cards"]:
        lib = _price_for(row)
        facts: dict[str, float] = {}
        sources: dict[str, str] = {}
        if row.get("arena_elo_raw") is not None:
            facts["arena_elo"] = round(float(row["arena_elo_raw"]) - shift, 1)
            sources["arena_elo"] = (f"{row['arena_elo_src']}; re-anchored by -{shift:g} (median shift of "
                                    f"{len(anchors)} anchors: {', '.join(anchors)})")
        for key in ("gpqa", "mmlu_pro", "aider_polyglot"):
            if row.get(key) is not None:
                facts[key] = float(row[key])
                sources[key] = row[f"{key}_src"]
        fields: dict[str, Any] = {
            "name": row["name"], "provider": row["provider"], "kind": row["kind"],
            "aliases": [a for a in row["aliases"].split(";") if a] if row["aliases"] else [],
            "facts": facts, "facts_date": stamp, "metrics": {},
        }
        caps = _capabilities(row["provider"])
        fields.update(supports_tools=caps["supports_tools"], supports_json=caps["supports_json"])
        sources.update(caps["sources"])
        if lib is not None:
            fields.update(lib.card_fields())
            sources["price"] = lib.source
            if lib.context_window:
                fields["context_window"] = lib.context_window
                sources["context_window"] = lib.source
        else:
            price = row.get("price")
            if not price:
                raise RegistryError(f"No price for {row['name']!r}: the price library lacks it and "
                                    "current_models.json gives none.")
            fields.update(input_usd_per_mtok=price["input"], output_usd_per_mtok=price["output"])
            sources["price"] = price["source"]
        if "context_window" not in fields:
            fields["context_window"] = int(row.get("context_window") or 128000)
            sources["context_window"] = row.get("context_window_src", "not published in the price library")
            if not row.get("context_window"):
                fields["imputed"] = ["context_window"]
        fields["sources"] = sources
        cards.append(ModelCard(**fields))
    out = []
    for card in cards:  # every new card's figures join the GPQA -> MMLU-Pro level map
        if any(card.facts.get(k) is not None for k in ("arena_elo", "gpqa", "mmlu_pro")):
            card = predict_card_domains(card, registry, peers=cards)
        else:
            card = card.model_copy(update={"unknown": sorted(set(card.unknown) | {"accuracy"})})
        out.append(card)
    return out


def refresh_prices(registry: Registry, *, today: str | None = None) -> list[Change]:
    """Re-read the price library for every card it knows; update ``registry`` in place.

    Returns:
        what changed (prices, tiers, context windows), one :class:`Change` per field.
    """
    stamp = today or date.today().isoformat()
    changes: list[Change] = []
    for card in list(registry):
        lib = price_of_card(card)
        if lib is None:
            continue
        new: dict[str, Any] = {
            "input_usd_per_mtok": lib.input_usd_per_mtok, "output_usd_per_mtok": lib.output_usd_per_mtok,
            "price_tiers": [{"min_input_tokens": s, "input_usd_per_mtok": i, "output_usd_per_mtok": o}
                            for s, i, o in lib.tiers],
        }
        own = card.sources.get("context_window", "")
        if lib.context_window and ("context_window" in card.imputed or not own or own.startswith("genai-prices")):
            new["context_window"] = lib.context_window  # a window another source stated is kept
        old = card.model_dump()
        diff = [Change(card.name, k, old[k], v) for k, v in new.items() if old[k] != v]
        changes.extend(diff)
        sources = {**card.sources, "price": lib.source}
        if "context_window" in new:
            sources["context_window"] = lib.source
        registry.update(card.name, **new, sources=sources, facts_date=stamp)
    return changes
