"""LangChain integration for OptiRoute (``ChatOptiRoute``, a BaseChatModel that routes every call).

Tracked in issue 4; see the README's status section for what is implemented.
"""

__all__: list[str] = []
