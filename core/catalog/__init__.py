"""What is known about each model before any prompt is seen: the registry of model cards
(prices, context window, capabilities, normalised quality metrics with sources) and the cold start
that maps a card's public facts onto per-domain accuracy.

Modules: ``registry`` (cards and name resolution), ``names`` (names as users write them: snapshots,
provider prefixes, Bedrock/Vertex/OpenRouter ids), ``prices`` (list prices from genai-prices),
``priors`` (the prior card of an unknown model), ``cold_start`` (public figures -> per-domain
accuracy), ``current`` (cards for today's models from ``data/current_models.json``, price refresh),
``table`` (a candidate list that keeps what routing derives from its cards).

May import: optiroute.errors, optiroute.schema.
"""
