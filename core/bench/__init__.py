"""``optiroute bench``: fit on the train split, measure the router and the baselines on test,
and write the report.

May import: optiroute.router and the layers below it.
"""
