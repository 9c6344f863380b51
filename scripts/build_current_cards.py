"""Add cards for today's models to the bundled registry and refresh every card's price.

Reads ``core/data/current_models.json`` (public figures with their sources) and the installed
``genai-prices`` tables; writes ``core/data/models.json``. Older cards are kept (the bundled outcome
store is about them): they gain the sourced GPQA / MMLU-Pro figures that train the cold start's level
map, their prices are re-read from the library where it knows them, and snapshot aliases that named
other models (``gpt-4o-2024-11-20`` on the ``gpt-4o-2024-05-13`` card) are dropped, so such a name
resolves to its family card with a note instead of silently.

Run: ``python scripts/build_current_cards.py`` (deterministic for one library version and date).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "pp")) if (ROOT / "build" / "pp").is_dir() else None

from optiroute.catalog.current import current_cards, refresh_prices, with_older_facts  # noqa: E402
from optiroute.catalog.registry import BUNDLED, Registry  # noqa: E402

#: Aliases of older cards that name a different snapshot (they resolve through the family now).
WRONG_ALIASES = {"gpt-4o-2024-05-13": ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "chatgpt-4o-latest"),
                 "claude-3-5-sonnet": ("claude-3-5-sonnet-20240620",)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=BUNDLED)
    ap.add_argument("--date", default=date.today().isoformat(), help="facts date recorded on refreshed cards")
    args = ap.parse_args()
    reg = Registry.from_file(BUNDLED)
    for name in [c.name for c in reg if c.facts_date is not None and c.sources.get("facts_origin") == "current"]:
        reg.remove(name)  # rebuilt below
    for name, bad in WRONG_ALIASES.items():
        if name in reg:
            card = reg.get(name)
            reg.update(name, aliases=[a for a in card.aliases if a not in bad])
    reg = with_older_facts(reg)
    changes = refresh_prices(reg, today=args.date)
    for change in changes:
        print(f"{change.model}: {change.field} {change.old} -> {change.new}")
    for card in current_cards(reg, today=args.date):
        card = card.model_copy(update={"sources": {**card.sources, "facts_origin": "current"}})
        reg.add(card, replace=True)
    reg.to_file(args.out)
    print(f"wrote {args.out} ({len(reg)} cards)")


if __name__ == "__main__":
    main()
