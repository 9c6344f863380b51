"""The ``optiroute`` command line (Typer): a shell over the library.

May import: anything in optiroute (the top layer).
"""
