"""Fitting a router on a user's own outcomes: the data formats, training the predictors and
choosing among them, and choosing a complementary model pool.

May import: optiroute.quality and the layers below it (not routing: fitting never routes).
"""
