"""What is known about each model before any prompt is seen: the registry of model cards
(prices, context window, capabilities, normalised quality metrics with sources) and the cold start
that maps a card's public facts onto per-domain accuracy.

May import: optiroute.errors, optiroute.schema.
"""
