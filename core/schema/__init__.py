"""The shapes every layer shares: preferences and profiles, hard constraints, the routing
decision and its parts, budgets and call tickets (pydantic models, no behaviour beyond validation),
and the checks every input from outside passes: numbers (:mod:`~optiroute.schema.numbers`: finite,
in range, integer where meant) and artifact files (:mod:`~optiroute.schema.files`: plain names,
regular files, size caps, shallow JSON).

May import: optiroute.errors.
"""
