"""How routing quality is measured over (prompts x models) score and cost matrices: quality-cost
curves and their summaries (AIQ, APGR, CPT), and the reference routers (single models, oracle,
sweeps) a router is compared with. Pure numpy.

May import: optiroute.errors.
"""
