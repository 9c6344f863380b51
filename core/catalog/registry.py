"""MRES model registry: model cards with prices, capabilities, latency estimates and 0..1 metrics.

A :class:`ModelCard` says what routing needs to know of a model without calling it. Metrics are
normalised to 0..1 (higher is better) by ``scripts/build_registry.py`` and keep the public source of
every value (``sources``); values that had no source are imputed and listed in ``imputed``:

- ``accuracy``: MMLU-Pro train-split accuracy where the model has outcomes, else mapped from Arena Elo
  (or MT-Bench) by a regression fitted on models that have both;
- ``helpfulness``: AlpacaEval 2 length-controlled win rate (or MT-Bench), min-max over the registry;
- ``honesty``: TruthfulQA MC2; ``harmlessness``: 1 - SORRY-Bench fulfilment rate of unsafe requests;
- ``steerability``: IFEval; ``creativity``: EQ-Bench creative writing, min-max per scale.

Latency is an **estimate**: time to first token + output tokens / throughput, from public throughput
figures; no data source records latency, and observed latencies replace the estimate at run time.

The :class:`Registry` resolves the names callers use (``ChatOpenAI(model="gpt-4o-mini")``,
``"meta-llama/Llama-3.1-8B-Instruct"``, ``"claude-3-5-haiku-latest"``) through a normalised alias map;
an unknown name gets a neutral-prior card and one :class:`UnknownModelWarning`, never a crash.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from optiroute.catalog.names import normalise_name, spellings
from optiroute.catalog.priors import prior_fields, unknown_note
from optiroute.errors import (
    ArtifactNotFoundError,
    ModelNameWarning,
    ModelNotFoundError,
    RegistryError,
    UnknownModelWarning,
)
from optiroute.schema.files import CAPS, load_json, read_capped
from optiroute.schema.numbers import (
    MAX_METRIC_FACT,
    MAX_PRICE_PER_MTOK,
    MAX_SECONDS,
    MAX_TOKENS,
    integer,
    optiroute_error,
    real,
)

__all__ = ["METRICS", "ModelCard", "NameMatch", "PriceTier", "Registry", "card_revision", "normalise_name"]

METRICS = ("accuracy", "helpfulness", "honesty", "harmlessness", "steerability", "creativity")
BUNDLED = Path(__file__).resolve().parent.parent / "data" / "models.json"

#: Edits of any card or registry so far (one cell, so the functions below change it in place).
_REVISION = [0]


def card_revision() -> int:
    """A number that changes whenever a card field is assigned or a registry adds, removes or
    replaces a card: what was derived from cards (a router's candidate tables) is stale once it
    moved. A dict inside a card edited in place (``card.metrics["accuracy"] = ...``) is not seen;
    assign the field, or use :meth:`Registry.update`."""
    return _REVISION[0]


def _edited() -> None:
    _REVISION[0] += 1


def _name_of(data: Any) -> str:
    name = data.get("name", "?") if isinstance(data, dict) else "?"
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def _number_map(values: Any, field: str, *, lo: float, hi: float) -> dict[str, float]:
    if not isinstance(values, dict):
        raise RegistryError(f"field {field!r} must map names to numbers, got {type(values).__name__}.")
    out: dict[str, float] = {}
    for key, v in values.items():
        if not isinstance(key, str):
            raise RegistryError(f"field {field!r} must map names (strings) to numbers, got the key {key!r}.")
        out[key] = real(v, f"field {field!r}: {key}", lo=lo, hi=hi, error=RegistryError)
    return out


class PriceTier(BaseModel):
    """A long-context price tier: from ``min_input_tokens`` input tokens on, the whole call is billed at
    these rates (the providers' "cliff" model, as the price library records it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_input_tokens: int
    input_usd_per_mtok: float
    output_usd_per_mtok: float

    @field_validator("input_usd_per_mtok", "output_usd_per_mtok", mode="before")
    @classmethod
    def _price(cls, value: Any, info: Any) -> float:
        return real(value, f"price tier {info.field_name!r}", lo=0.0, hi=MAX_PRICE_PER_MTOK, error=RegistryError)

    @field_validator("min_input_tokens", mode="before")
    @classmethod
    def _start(cls, value: Any) -> int:
        return integer(value, "price tier 'min_input_tokens'", lo=1, hi=MAX_TOKENS, error=RegistryError)


class ModelCard(BaseModel):
    """Everything routing knows of one model.

    Attributes:
        name: canonical registry name.
        aliases: other names that resolve to this card.
        provider: who serves it (``openai``, ``anthropic``, ``local``, ...).
        kind: ``api`` (hosted proprietary), ``chat`` (instruction-tuned open model), ``base``
            (pre-trained only: completions) or ``local`` (runs on this machine).
        input_usd_per_mtok, output_usd_per_mtok: list prices per million tokens.
        context_window: maximum tokens of prompt + answer.
        supports_tools, supports_json: function calling / JSON output mode.
        supports_vision: image input (``None``: not stated).
        ttft_s, tokens_per_s: latency model (estimate; see module docstring).
        verbosity: this model's answer length relative to the analyzer's per-prompt estimate (a
            chain-of-thought model answers at 2-4x the typical length, and is billed for it);
            :meth:`Router.fit` measures it from the data's ``output_tokens``.
        metrics: the six 0..1 quality dimensions.
        accuracy_by_task, accuracy_by_domain: 0..1 accuracy per task type / MMLU-Pro domain.
        facts: model-level figures on their own scales (``params_b``, ``arena_elo``, ``mt_bench``);
            cold start (:func:`optiroute.catalog.cold_start.predict_card_domains`) maps them to accuracy
            for a model without outcomes.
        sources: field -> public source of its value.
        imputed: fields whose value was imputed rather than sourced.
        unknown: metrics nobody has a figure for: the card stores a placeholder, and scoring treats
            the dimension as neutral for this model (the candidates' mean), never as a low number.
        price_tiers: long-context tiers (the call's input size selects one), from the price library.
        facts_date: the date (``YYYY-MM-DD``) its prices and capabilities were last refreshed.
        quality_sd: the spread of a prior card's accuracy (unknown models: wide), else ``None``.
        prior: True for the prior card of an unknown model.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(min_length=1, max_length=512)
    aliases: list[str] = Field(default_factory=list)
    provider: str = "unknown"
    kind: Literal["api", "chat", "base", "local"] = "chat"
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    context_window: int = 8192
    supports_tools: bool = True
    supports_json: bool = True
    supports_vision: bool | None = None
    ttft_s: float = 0.5
    tokens_per_s: float = 50.0
    verbosity: float = 1.0
    metrics: dict[str, float] = Field(default_factory=dict)
    accuracy_by_task: dict[str, float] = Field(default_factory=dict)
    accuracy_by_domain: dict[str, float] = Field(default_factory=dict)
    facts: dict[str, float] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)
    imputed: list[str] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)
    price_tiers: list[PriceTier] = Field(default_factory=list)
    facts_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    quality_sd: float | None = Field(default=None, ge=0.0, le=1.0)
    prior: bool = False

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            inner = optiroute_error(exc)
            if isinstance(inner, RegistryError):
                raise RegistryError(f"Invalid model card {_name_of(data)}: {inner}") from None
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "card"
            raise RegistryError(
                f"Invalid model card {_name_of(data)}: field {where!r}: {first.get('msg')}. "
                "Prices are USD per million tokens (>= 0), metrics are 0..1."
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)  # validated (validate_assignment)
        _edited()

    @field_validator("input_usd_per_mtok", "output_usd_per_mtok", mode="before")
    @classmethod
    def _price(cls, value: Any, info: Any) -> float:
        return real(value, f"field {info.field_name!r}", lo=0.0, hi=MAX_PRICE_PER_MTOK, error=RegistryError,
                    hint="Prices are USD per million tokens.")

    @field_validator("context_window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> int:
        return integer(value, "field 'context_window'", lo=1, hi=MAX_TOKENS, error=RegistryError,
                       hint="It counts tokens of prompt plus answer.")

    @field_validator("ttft_s", mode="before")
    @classmethod
    def _ttft(cls, value: Any) -> float:
        return real(value, "field 'ttft_s'", lo=0.0, hi=MAX_SECONDS, error=RegistryError,
                    hint="It is the time to the first token in seconds.")

    @field_validator("tokens_per_s", mode="before")
    @classmethod
    def _speed(cls, value: Any) -> float:
        return real(value, "field 'tokens_per_s'", lo=1e-3, hi=1e7, error=RegistryError,
                    hint="It is the generation speed in tokens per second.")

    @field_validator("verbosity", mode="before")
    @classmethod
    def _verbosity(cls, value: Any) -> float:
        return real(value, "field 'verbosity'", lo=1e-3, hi=1000.0, error=RegistryError,
                    hint="It is the answer length relative to the analyzer's estimate (1 = typical).")

    @field_validator("metrics", "accuracy_by_task", "accuracy_by_domain", mode="before")
    @classmethod
    def _unit_interval(cls, values: Any, info: Any) -> dict[str, float]:
        return _number_map(values, info.field_name, lo=0.0, hi=1.0)

    @field_validator("facts", mode="before")
    @classmethod
    def _finite(cls, values: Any) -> dict[str, float]:
        return _number_map(values, "facts", lo=-MAX_METRIC_FACT, hi=MAX_METRIC_FACT)

    def model_post_init(self, __context: Any) -> None:
        missing = [m for m in METRICS if m not in self.metrics]
        if missing:  # a card answers every dimension; one without a figure is marked unknown (neutral)
            self.metrics.update({m: 0.5 for m in missing})
            self.unknown.extend(m for m in missing if m not in self.unknown)

    def known(self, metric: str) -> bool:
        """The card has a figure (sourced or derived from one) for ``metric``."""
        return metric in self.metrics and metric not in self.unknown

    def prices_at(self, input_tokens: float) -> tuple[float, float]:
        """(input, output) USD per million tokens for a call of ``input_tokens`` (its tier)."""
        pin, pout = self.input_usd_per_mtok, self.output_usd_per_mtok
        for tier in sorted(self.price_tiers, key=lambda t: t.min_input_tokens):
            if input_tokens > tier.min_input_tokens:
                pin, pout = tier.input_usd_per_mtok, tier.output_usd_per_mtok
        return pin, pout

    def cost_usd(self, input_tokens: float, output_tokens: float) -> float:
        """Predicted cost of one call at list prices (the tier its input size selects)."""
        pin, pout = self.prices_at(input_tokens)
        return (input_tokens * pin + output_tokens * pout) / 1e6

    def latency_s(self, output_tokens: float) -> float:
        """Estimated end-to-end latency: time to first token + generation time."""
        return self.ttft_s + output_tokens / self.tokens_per_s


@dataclass(frozen=True)
class NameMatch:
    """How a name resolved: its card, ``how`` (``exact``, ``family`` or ``ambiguous``) and the note
    to show the caller (``None`` for an exact match)."""

    card: ModelCard
    how: str
    note: str | None = None


class Registry:
    """A mutable set of model cards with name/alias resolution.

    Args:
        cards: the initial cards (names and aliases must not collide).
    """

    def __init__(self, cards: Iterable[ModelCard] = ()) -> None:
        self._cards: dict[str, ModelCard] = {}
        self._alias: dict[str, str] = {}
        self._priors: dict[str, ModelCard] = {}
        self._noted: set[str] = set()
        self._lock = threading.RLock()
        for card in cards:
            self.add(card)

    # ------------------------------------------------------------------ lookup
    def _index(self, card: ModelCard) -> None:
        for n in (card.name, *card.aliases):
            self._alias[normalise_name(n)] = card.name

    def _lookup(self, name: str) -> ModelCard | None:
        found = self.match(name)
        return found.card if found is not None else None

    def match(self, name: str) -> NameMatch | None:
        """How ``name`` resolves: the card, and a note when it is a family's card or a guess.

        Tried in order: the exact card name, then every spelling of :func:`optiroute.catalog.names.spellings`
        (prefixes, Bedrock/Vertex/OpenRouter ids, ``-latest``, then dropping snapshot dates), then a
        unique family prefix (``claude-opus-4`` -> ``claude-opus-4-1``). Several cards sharing the prefix
        make the name ambiguous: the newest card is taken and the note says which, and which others.
        ``None`` when nothing matches.
        """
        if name in self._cards:
            return NameMatch(self._cards[name], "exact")
        for sp in spellings(name):
            hit = self._alias.get(sp.key)
            if hit is None:
                continue
            card = self._cards[hit]
            if sp.how == "exact":
                return NameMatch(card, "exact")
            return NameMatch(card, "family", (
                f"OptiRoute has no card for the snapshot {name!r}; it routes it with the {card.name!r} card of "
                f"its family (the snapshot {sp.dropped.lstrip('-')} may differ). Add a card for it with "
                "`optiroute models add` if it matters."))
        keys = [sp.key for sp in spellings(name)]
        for key in keys:
            if len(key) < 4:
                continue
            owners = list(dict.fromkeys(v for k, v in self._alias.items() if k.startswith(key + "-")))
            if not owners:
                continue
            order = list(self._cards)
            owners.sort(key=order.index)
            card = self._cards[owners[-1]]  # the most recently added card of the family
            if len(owners) == 1:
                return NameMatch(card, "family", (
                    f"OptiRoute read {name!r} as {card.name!r}, the only card of that family."))
            return NameMatch(card, "ambiguous", (
                f"The model name {name!r} is ambiguous: it fits {', '.join(repr(o) for o in owners)}; "
                f"OptiRoute took {card.name!r}. Pass the full name to choose another."))
        return None

    def get(self, name: str) -> ModelCard:
        """The card of ``name`` (exact, alias, or normalised form).

        Raises:
            ModelNotFoundError: no card matches; add one with :meth:`add` or use :meth:`resolve`.
        """
        card = self._lookup(name)
        if card is None:
            raise ModelNotFoundError(
                f"No model card for {name!r}; add one with registry.add(ModelCard(...)) or "
                "`optiroute models add`, or call registry.resolve() for a neutral prior."
            )
        return card

    def note(self, name: str) -> str | None:
        """What the caller should know of how ``name`` resolved (a family card, an ambiguous name, a
        prior for an unknown model), else ``None``. The same text as the one warning :meth:`resolve`
        gives, for decisions to carry."""
        found = self.match(name)
        if found is not None:
            return found.note
        with self._lock:
            prior = self._priors.get(name)
        return None if prior is None else unknown_note(prior)

    def resolve(self, name: str) -> ModelCard:
        """Like :meth:`get`, but an unknown model gets a prior card from what can be known of it
        (:func:`optiroute.catalog.priors.prior_card`) and one warning; a family card or an ambiguous
        name warns once too."""
        found = self.match(name)
        if found is not None:
            if found.note is not None:
                with self._lock:
                    first = name not in self._noted
                    self._noted.add(name)
                if first:
                    warnings.warn(found.note, ModelNameWarning, stacklevel=3)
            return found.card
        with self._lock:
            prior = self._priors.get(name)
            if prior is None:
                prior = ModelCard(**prior_fields(name, list(self._cards.values())))
                self._priors[name] = prior
                warnings.warn(unknown_note(prior), UnknownModelWarning, stacklevel=3)
        return prior

    def set_capabilities(self, name: str, *, source: str, **fields: Any) -> bool:
        """Fill or override ``name``'s card's capability fields (``context_window``, ``supports_tools``,
        ``supports_json``, ``supports_vision``) from ``source`` (a framework's model profile); a prior
        card of an unknown model takes them too. Returns whether anything changed.

        Raises:
            RegistryError: another field, or an invalid value.
        """
        allowed = {"context_window", "supports_tools", "supports_json", "supports_vision"}
        bad = sorted(set(fields) - allowed)
        if bad:
            raise RegistryError(f"set_capabilities takes {sorted(allowed)}, not {bad}.")
        with self._lock:
            card = self.resolve(name)
            new = {k: v for k, v in fields.items() if getattr(card, k) != v}
            if not new:
                return False
            update = {**new, "sources": {**card.sources, **{k: source for k in new}},
                      "imputed": [m for m in card.imputed if m not in new]}
            if card.prior:
                self._priors[name] = ModelCard(**{**card.model_dump(), **update})
                _edited()
            else:
                self.update(card.name, **update)
            return True

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lookup(name) is not None

    def __iter__(self) -> Iterator[ModelCard]:
        return iter(list(self._cards.values()))

    def __len__(self) -> int:
        return len(self._cards)

    @property
    def names(self) -> list[str]:
        """Canonical names of every card."""
        return list(self._cards)

    def cards_for(self, names: Iterable[str]) -> list[ModelCard]:
        """Resolve several names (unknown ones get neutral priors)."""
        return [self.resolve(n) for n in names]

    # ------------------------------------------------------------------ edit
    def add(self, card: ModelCard, *, replace: bool = False) -> None:
        """Add a card; its name and aliases must not belong to another card unless ``replace``."""
        if not isinstance(card, ModelCard):
            raise RegistryError(f"Registry.add takes a ModelCard, got {type(card).__name__}.")
        # Re-validated: model_copy(update=...) skips validation, and a registry never holds (or
        # writes) a card that would not load again.
        card = ModelCard(**card.model_dump())
        with self._lock:
            for n in (card.name, *card.aliases):
                owner = self._alias.get(normalise_name(n))
                if owner is not None and not (replace and owner == card.name):
                    raise RegistryError(
                        f"Name {n!r} of card {card.name!r} already belongs to {owner!r}; pass "
                        "replace=True to replace that card, or remove it first."
                    )
            if replace and card.name in self._cards:
                self.remove(card.name)
            self._cards[card.name] = card
            self._priors.pop(card.name, None)
            self._index(card)
            _edited()

    def update(self, name: str, **fields: Any) -> ModelCard:
        """Replace fields of a card (validated); returns the new card."""
        with self._lock:
            old = self.get(name)
            new = ModelCard(**{**old.model_dump(), **fields})
            self.remove(old.name)
            self.add(new)
            return new

    def remove(self, name: str) -> ModelCard:
        """Remove a card by name or alias; returns it."""
        with self._lock:
            card = self.get(name)
            del self._cards[card.name]
            self._alias = {k: v for k, v in self._alias.items() if v != card.name}
            _edited()
            return card

    def copy(self) -> Registry:
        """An independent copy (cards are re-validated, so edits never leak between copies)."""
        return Registry(self._cards.values())  # add() validates each into a new card

    def merged(self, other: Registry) -> Registry:
        """A copy of this registry with ``other``'s cards added (they replace same-named cards)."""
        out = self.copy()
        for card in other:
            out.add(card, replace=True)
        return out

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe contents."""
        return {"format": "optiroute-registry", "version": 1,
                "cards": [c.model_dump(exclude_defaults=False) for c in self._cards.values()]}

    def to_file(self, path: str | Path) -> None:
        """Write the registry as JSON (``.json``) or YAML (``.yaml``/``.yml``), atomically: the file
        is written beside its target and renamed over it, so a failed write never leaves half a file."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        if p.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(data, indent=1, ensure_ascii=False)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, p)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def from_file(cls, path: str | Path) -> Registry:
        """Read a registry file (JSON or YAML, safe loader only), untrusted: a regular file of at most
        64 MB, JSON nested at most 64 deep, every card validated.

        Raises:
            RegistryError: missing file, bad syntax or invalid cards (the message names the file).
        """
        p = Path(path)
        try:
            raw = read_capped(p, CAPS["registry.json"], error=RegistryError)
        except ArtifactNotFoundError:
            raise RegistryError(f"Registry file {str(p)!r} does not exist.") from None
        if p.suffix in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(raw.decode("utf-8"))
            except (UnicodeDecodeError, yaml.YAMLError, RecursionError, ValueError) as exc:
                raise RegistryError(f"Registry file {str(p)!r} cannot be parsed: {exc}") from None
        else:
            data = load_json(raw, label=f"Registry file {str(p)!r}", error=RegistryError)
        cards = data.get("cards") if isinstance(data, dict) else data
        if not isinstance(cards, list):
            raise RegistryError(f"Registry file {str(p)!r} must hold a list of cards under 'cards'.")
        out = cls()
        for i, c in enumerate(cards):
            if not isinstance(c, dict) or not all(isinstance(k, str) for k in c):
                raise RegistryError(f"Registry file {str(p)!r} has a malformed card at position {i}: "
                                    "each card is a mapping of field names to values.")
            try:
                out.add(ModelCard(**c))
            except RegistryError as exc:
                raise RegistryError(f"Registry file {str(p)!r}, card {i}: {exc}") from None
        return out

    @classmethod
    def default(cls) -> Registry:
        """A copy of the bundled registry (loaded once per process)."""
        global _DEFAULT
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = cls.from_file(BUNDLED)
        return _DEFAULT.copy()


_DEFAULT: Registry | None = None
_DEFAULT_LOCK = threading.Lock()
