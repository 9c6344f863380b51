"""What a prompt is: normalising prompts and chat histories to routable text, the text a router's
prompts share (learned at fit, removed before embedding), long-prompt pruning, the MiniLM sentence
embedder, and the task analyzer heads (task type, domain, complexity).

May import: optiroute.errors, optiroute.schema.
"""
