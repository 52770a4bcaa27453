"""Stage glue: what one notebook needs beyond the shared readers of :mod:`pai.experiments` -- the
tables its figures and claims read, reshaped from the results, one module per stage.

Kept out of the notebooks so that a notebook cell stays the question, one call, the figure and what
it shows; kept out of :mod:`pai.experiments` because each piece serves one stage only.
"""
