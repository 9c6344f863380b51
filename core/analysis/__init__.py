"""What a prompt is: normalising prompts and chat histories to routable text, long-prompt
pruning, the MiniLM sentence embedder, and the task analyzer heads (task type, domain, complexity).

May import: optiroute.errors, optiroute.schema.
"""
