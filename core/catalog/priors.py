"""The prior card of a model the registry has no card for: what can be known of it, and no more.

An unknown name is not routed blind on one made-up number. Its card is built from:

- its **price** from the price library (:mod:`optiroute.catalog.prices`) when the library knows it;
- its **provider family**, read from the name (``gpt-``/``o3`` -> openai, ``claude`` -> anthropic, ...);
- its **peers**: the known chat/API cards of that family (else of every family) closest to it in
  output price. Its per-domain accuracy is the peers' per-domain *median* (so it is never ranked
  above or below the known models on a number nobody measured: it sits inside their range), and
  ``quality_sd`` records the peers' spread, which the decision shows.

Every other quality dimension is marked unknown (neutral in scoring). The card says how to add facts
(``optiroute models add``) or measure the model (``optiroute onboard``).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from typing import Any

from optiroute.catalog.names import normalise_name
from optiroute.catalog.prices import library_price

#: A model card (``optiroute.catalog.registry.ModelCard``), typed loosely: the registry imports this
#: module, so this one does not import the registry.
ModelCard = Any

__all__ = ["PEERS", "prior_fields", "provider_of", "unknown_note"]

#: How many peers a prior card is built from.
PEERS = 5

_FAMILIES = (
    (r"^(gpt|o\d|chatgpt|text-|davinci|babbage)", "openai"),
    (r"^claude", "anthropic"),
    (r"^(gemini|gemma|palm|bison)", "google"),
    (r"^grok", "xai"),
    (r"^deepseek", "deepseek"),
    (r"^(mistral|mixtral|ministral|magistral|codestral|devstral|pixtral|open-mistral)", "mistral"),
    (r"^(qwen|qwq)", "qwen"),
    (r"^(llama|meta-llama)", "meta"),
    (r"^(command|c4ai)", "cohere"),
    (r"^kimi", "moonshot"),
)


def provider_of(name: str) -> str:
    """The provider family a model name belongs to, read from its spelling (``unknown`` if none)."""
    key = normalise_name(name)
    raw = name.strip().lower()
    for head in (raw.split("/", 1)[0] if "/" in raw else "",):
        for pattern, fam in _FAMILIES:
            if re.match(pattern, head):
                return fam
        if head in ("openai", "anthropic", "google", "xai", "x-ai", "deepseek", "mistral", "mistralai", "qwen"):
            return {"x-ai": "xai", "mistralai": "mistral"}.get(head, head)
    for pattern, fam in _FAMILIES:
        if re.match(pattern, key):
            return fam
    return "unknown"


def _median(values: Sequence[float], default: float) -> float:
    return float(statistics.median(values)) if values else default


def prior_fields(name: str, cards: Sequence[ModelCard]) -> dict[str, Any]:
    """The fields of ``name``'s prior card (see the module docstring); ``cards`` are the known cards."""
    family = provider_of(name)
    lib = library_price(name, family if family != "unknown" else None)
    pool = [c for c in cards if c.kind in ("api", "chat") and not c.prior and c.metrics.get("accuracy") is not None]
    same = [c for c in pool if c.provider == family]
    base = same if len(same) >= 2 else pool
    if lib is not None:  # the nearest in list price; without a price, every model of the family
        target = math.log10(lib.output_usd_per_mtok + 1e-3)
        base = sorted(base, key=lambda c: abs(math.log10(c.output_usd_per_mtok + 1e-3) - target))[:PEERS]
    peers = base
    acc = [c.metrics["accuracy"] for c in peers]
    domains = sorted({d for c in peers for d in c.accuracy_by_domain})
    by_domain = {d: round(_median([c.accuracy_by_domain[d] for c in peers if d in c.accuracy_by_domain],
                                  _median(acc, 0.5)), 4) for d in domains}
    sd = max(0.1, float(statistics.pstdev(acc)) if len(acc) > 1 else 0.15)
    how = (f"{len(peers)} known {family + ' ' if family != 'unknown' and len(same) >= 2 else ''}models"
           + (f" nearest its list price ({lib.source})" if lib is not None else ""))
    sources = {"accuracy": f"prior: median of {how}: {', '.join(c.name for c in peers)}",
               "accuracy_by_domain": f"prior: per-domain median of {how}"}
    fields: dict[str, Any] = {
        "name": name, "provider": family, "kind": "chat",
        "input_usd_per_mtok": _median([c.input_usd_per_mtok for c in peers], 1.0),
        "output_usd_per_mtok": _median([c.output_usd_per_mtok for c in peers], 2.0),
        "ttft_s": _median([c.ttft_s for c in peers], 0.5),
        "tokens_per_s": _median([c.tokens_per_s for c in peers], 50.0),
        "metrics": {"accuracy": round(_median(acc, 0.5), 4)},
        "accuracy_by_domain": by_domain,
        "imputed": ["accuracy", "accuracy_by_domain", "context_window", "supports_tools", "supports_json"],
        "quality_sd": round(min(sd, 1.0), 4), "prior": True,
    }
    if lib is not None:
        fields.update(lib.card_fields())
        sources["price"] = lib.source
        if lib.context_window:
            fields["context_window"] = lib.context_window
            fields["imputed"].remove("context_window")
            sources["context_window"] = lib.source
    else:
        sources["price"] = f"prior: median of {how}"
        fields["imputed"].append("price")
    fields["sources"] = sources
    return fields


def unknown_note(card: ModelCard) -> str:
    """The one warning for an unknown model: what its prior rests on and how to do better."""
    sd = card.quality_sd if card.quality_sd is not None else 0.15
    priced = "its list price from genai-prices" if "genai-prices" in card.sources.get("price", "") else "no known price"
    return (
        f"OptiRoute has no card for model {card.name!r}; it routes it on a prior: quality "
        f"{card.metrics.get('accuracy', 0.5):.2f} ± {sd:.2f} from "
        f"{'known models' if card.provider == 'unknown' else card.provider + ' models'} like it ({priced}). "
        f"Add its facts with `optiroute models add --name {card.name} --input-price ... --output-price ... "
        "--arena-elo ...`, or measure it with `optiroute onboard`."
    )
