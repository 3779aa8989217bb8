"""Pure model adapters: typed inputs and results, ``name`` + ``version``, loaded lazily once per
process. Engines import no Django, no ``apps`` and no ``mediaintel`` (the ``[tool.importlinter]``
contracts in pyproject.toml); web code never imports them (the web image has no numpy or torch).
"""
