"""Predicted quality of every (prompt, model) pair: the kNN outcome index of prompts with known
per-model outcomes, card priors, and one module per learned predictor kind (kNN, Routoo, MLP, task).

May import: optiroute.catalog, optiroute.analysis, optiroute.metrics and the layers below them.
"""
