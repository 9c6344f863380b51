"""LlamaIndex integration for OptiRoute (``OptiRoute``, a FunctionCallingLLM).

The adapter is tracked in issue 5 and not implemented yet; this package only reserves the name so that
the distribution layout is final. Use :mod:`optiroute` or :mod:`langchain_optiroute` meanwhile.
"""

__all__: list[str] = []
