"""pai: data-free pruning at initialization seen through graph theory.

Pruners (``pai.pruners``), graph and path metrics (``pai.metrics``), models (``pai.models``),
data as device tensors (``pai.data``) and a fast trainer (``pai.train``).
"""
__version__ = "0.1.0"


def __getattr__(name):  # lazy, so ``import pai`` stays cheap and submodules import in any order
    if name == "prune":
        from pai.pruners import prune

        return prune
    raise AttributeError(f"module 'pai' has no attribute {name!r}")
