"""``optiroute bench``: fit on the train split, measure the router and the baselines on test,
and write the report.

May import: optiroute.fit, optiroute.onboard and the layers below them.
"""
