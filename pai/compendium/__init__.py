"""The compendium: the machinery that turns ``params/*.yaml`` into runs, figures and verdicts.

Runs (``spec``: typed run specs and their ids; ``regimes``; ``runs``: ``run_one``/``sweep``; ``executors``:
local or Ray; ``tables``), the notebook stages (``stages``, ``experiments``, ``params``, ``notebook``,
``profiles``), the figures (``plots``, ``variants``, ``placement``, ``figindex``) and the claims
(``claims``, ``published``).  It imports the library (``pai.pruners``, ``pai.metrics``, ``pai.models``,
``pai.data``, ``pai.train``, ``pai.masks``, ``pai.graph``); the library never imports it
(``tests/test_architecture.py``).
"""
