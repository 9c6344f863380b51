"""The shapes every layer shares: preferences and profiles, hard constraints, the routing
decision and its parts, budgets and call tickets (pydantic models, no behaviour beyond validation).

May import: optiroute.errors.
"""
