"""Adding a new model to a fitted router from a few evaluated prompts: choosing representative
prompts, scoring answers, estimating its level and filling the rest of its column from the models
it resembles.

May import: optiroute.router and the layers below it.
"""
