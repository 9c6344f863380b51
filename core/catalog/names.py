"""Model names as people write them, reduced to the keys the registry indexes.

A caller writes the same model many ways: ``gpt-5-2025-08-07`` (a dated snapshot),
``openai/gpt-5`` (a provider prefix, OpenRouter and LiteLLM style), ``models/gemini-2.5-pro`` (Google's
SDK), ``us.anthropic.claude-sonnet-4-5-20250929-v1:0`` (Bedrock, with a region and a version),
``claude-sonnet-4-5@20250929`` (Vertex), ``publishers/google/models/gemini-2.5-flash`` (Vertex paths),
``anthropic/claude-sonnet-4.5:thinking`` (an OpenRouter variant), ``claude-3-5-haiku-latest`` (an
alias). :func:`spellings` turns one name into the normalised keys to try, most specific first, each
marked with how far it is from what was written, so the registry can say when it took a family's
card for a snapshot it has no card of.

Only string handling here: no registry, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Spelling", "normalise_name", "spellings"]

#: Bedrock's model-id vendor prefixes (``anthropic.claude-...``), after an optional region prefix.
_BEDROCK_VENDORS = ("anthropic", "meta", "mistral", "amazon", "cohere", "ai21", "deepseek", "qwen", "openai",
                    "writer", "google", "xai", "moonshot")
_BEDROCK = re.compile(
    r"^(?:(?:us|eu|apac|ap|global|us-gov|ca|jp|au)\.)?(?:" + "|".join(_BEDROCK_VENDORS) + r")\.(?P<id>.+)$"
)
#: Bedrock's version suffix ``-v1:0`` / ``-v2`` (kept apart from ``Mistral-7B-Instruct-v0.2``, whose
#: version is part of the name: only a trailing ``:N`` or a bare ``-vN`` after a date is dropped).
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")
#: OpenRouter's routing variants (``:free``, ``:thinking``, ...), which do not change the model.
_VARIANT = re.compile(r":(?:free|beta|thinking|extended|nitro|floor|online|exacto)$")
#: A snapshot date or release tag at the end of a name.
_DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{2}-\d{4}|\d{4}|\d{3})$")
_TAGGED = re.compile(r"-(?:latest|preview(?:-\d{2}-\d{2})?|exp(?:-\d{2}-\d{2})?|v\d+(?:-\d+)?)$")

How = Literal["exact", "family"]


@dataclass(frozen=True)
class Spelling:
    """One normalised key to look up.

    Attributes:
        key: the normalised name (:func:`normalise_name`).
        how: ``exact`` when only the spelling changed (prefixes, case, separators, a ``-latest``
            alias); ``family`` when a snapshot date or release tag was dropped, so a card found under
            this key is the family's, not the snapshot's own.
        dropped: the suffix that was dropped (``-2025-08-07``), for the note.
    """

    key: str
    how: How
    dropped: str = ""


def normalise_name(name: str) -> str:
    """Lower-case, drop a provider prefix (``openai/``), unify ``_ . : @ space`` to ``-``."""
    n = str(name).strip().lower()
    if "/" in n:
        n = n.rsplit("/", 1)[1]
    n = re.sub(r"[\s_.:@]+", "-", n)
    return re.sub(r"-+", "-", n).strip("-")


def _unwrap(name: str) -> str:
    """The model id inside a provider's wrapping (paths, ARNs, Bedrock ids, variants), raw case."""
    n = str(name).strip()
    if n.startswith("arn:") and "/" in n:  # arn:aws:bedrock:...:foundation-model/anthropic.claude-...
        n = n.rsplit("/", 1)[1]
    if "/" in n:  # openai/gpt-5, models/gemini-2.5-pro, publishers/google/models/..., bedrock/anthropic...
        n = n.rsplit("/", 1)[1]
    n = _VARIANT.sub("", n)
    m = _BEDROCK.match(n.lower())
    if m:
        n = n[len(n) - len(m.group("id")):]
        n = _BEDROCK_VERSION.sub("", n.lower())
    return n


def spellings(name: str) -> list[Spelling]:
    """The keys to try for ``name``, most specific first (see the module docstring)."""
    out: list[Spelling] = []
    seen: set[str] = set()

    def add(key: str, how: How, dropped: str = "") -> None:
        if key and key not in seen:
            seen.add(key)
            out.append(Spelling(key, how, dropped))

    add(normalise_name(name), "exact")
    key = normalise_name(_unwrap(name))
    add(key, "exact")
    if key.startswith("chatgpt-"):  # ChatGPT's rolling snapshot of a model: that model's family
        key = key[len("chatgpt-"):].removesuffix("-latest")
        key = "gpt-" + key.removeprefix("gpt-")
        add(key, "family", "(ChatGPT's rolling snapshot)")
    # Vertex writes the snapshot after '@' (claude-sonnet-4-5@20250929): the part before is the family.
    # Strip snapshot dates and release tags one at a time: gpt-5-2025-08-07 -> gpt-5,
    # gemini-2.5-pro-preview-06-05 -> gemini-2.5-pro, claude-3-5-haiku-latest -> claude-3-5-haiku.
    dropped = ""
    while True:
        m = _DATED.search(key) or _TAGGED.search(key)
        if m is None or m.start() == 0:
            break
        suffix = m.group(0)
        key = key[: m.start()]
        dropped = suffix + dropped
        alias_only = suffix == "-latest" and dropped == suffix
        add(key, "exact" if alias_only else "family", "" if alias_only else dropped)
    return out
