"""What the router learns while it runs: feedback memory (pooled residuals by task type and
domain, optionally rated neighbours) and observed latency per model.

May import: optiroute.errors, optiroute.schema.
"""
