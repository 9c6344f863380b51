"""The pure matrix pipeline of a routing pass: scoring under preferences, the policy (hard
constraints, task/domain filters, generalist, exploration), budgeted choice over a batch, and the
explanations that turn one row of the arrays into a decision. No state, no I/O.

May import: optiroute.quality and the layers below it.
"""
