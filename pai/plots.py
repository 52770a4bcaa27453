"""The figure styles the notebooks share: paper-ready, and every correlation states rho, p and n.

Figures are written as PNG (300 dpi) and PDF side by side, atomically, and each carries a footer
naming dataset, model, epochs and seeds (``caption``), so a figure lifted out of its notebook still
says what produced it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import matplotlib

matplotlib.use("Agg")  # notebooks under papermill and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import atomic_write  # noqa: E402

PALETTE = {
    "random": "#7f7f7f", "random-erk": "#8c564b", "random-er": "#bcbd22", "magnitude": "#17becf",
    "xnet": "#ff7f0e", "rreg": "#d62728", "phew": "#2ca02c", "synflow": "#1f77b4", "synflow-l2": "#9467bd",
    "snip": "#e377c2", "grasp": "#aec7e8", "npb": "#000000", "pags": "#98df8a", "pegs": "#ff9896",
    "dense": "#333333", "random-graph": "#7f7f7f", "lth": "#c49c94", "itop": "#f7b6d2",
}


def style() -> None:
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 300, "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
        "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
        "grid.alpha": 0.25, "figure.constrained_layout.use": True,
    })


def color(method: str) -> str:
    """A fixed colour per method; other labels get a stable one (crc32, not the salted ``hash``)."""
    import zlib

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return PALETTE.get(method) or cycle[zlib.crc32(str(method).encode()) % len(cycle)]


def caption(fig, text: str) -> None:
    fig.text(0.5, -0.01, text, ha="center", va="top", fontsize=7, color="#444444", wrap=True)


def save(fig, path_stem: str | os.PathLike) -> List[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically; return both paths."""
    stem = Path(path_stem)
    out = []
    for ext in ("png", "pdf"):
        target = stem.with_suffix(f".{ext}")
        # no creation date in the PDF: the same figure gives the same bytes (DVC outputs stay stable)
        meta = {"CreationDate": None} if ext == "pdf" else None
        atomic_write(target, lambda tmp, ext=ext, meta=meta: fig.savefig(tmp, format=ext, bbox_inches="tight",
                                                                         metadata=meta))
        out.append(target)
    return out


def correlation_scatter(ax, x: Sequence[float], y: Sequence[float], *, groups: Sequence[str] | None = None,
                        xlabel: str = "", ylabel: str = "", title: str = "", fit: bool = True) -> Dict:
    """Scatter y against x (coloured by group) with a least-squares line and Pearson rho, p, n on the plot."""
    from .metrics.stats import pearson

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    groups = np.asarray(groups if groups is not None else ["all"] * len(x))
    for g in dict.fromkeys(groups[ok]):
        sel = ok & (groups == g)
        ax.scatter(x[sel], y[sel], s=16, alpha=0.8, color=color(str(g)), label=str(g), edgecolors="none")
    rho, p, n = pearson(x, y)
    if fit and n >= 3 and np.ptp(x[ok]) > 0:
        a, b = np.polyfit(x[ok], y[ok], 1)
        xs = np.linspace(x[ok].min(), x[ok].max(), 50)
        ax.plot(xs, a * xs + b, color="black", lw=1, ls="--", alpha=0.7)
    ax.text(0.02, 0.98, f"Pearson ρ = {rho:.2f}\np = {p:.2g}, n = {n}", transform=ax.transAxes, va="top",
            ha="left", fontsize=8, bbox=dict(boxstyle="round", fc="white", ec="#cccccc", alpha=0.9))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return {"rho": rho, "p": p, "n": n}


def density_curves(ax, rows: Iterable[Dict], *, y: str, methods: Sequence[str] | None = None,
                   x: str = "density", ylabel: str = "", logx: bool = True, band: str = "minmax") -> None:
    """Mean of ``y`` per (method, density) with a band over seeds (min-max as the SynFlow figures)."""
    rows = list(rows)
    methods = methods or list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        pts: Dict[float, List[float]] = {}
        for r in rows:
            if r["method"] == m and r.get(y) is not None and np.isfinite(r[y]):
                pts.setdefault(round(float(r[x]), 6), []).append(float(r[y]))
        if not pts:
            continue
        xs = np.array(sorted(pts))
        vals = [np.array(pts[v]) for v in xs]
        mean = np.array([v.mean() for v in vals])
        lo = np.array([v.min() if band == "minmax" else v.mean() - v.std() for v in vals])
        hi = np.array([v.max() if band == "minmax" else v.mean() + v.std() for v in vals])
        ax.plot(xs, mean, marker="o", ms=3, lw=1.3, color=color(m), label=m)
        ax.fill_between(xs, lo, hi, color=color(m), alpha=0.18, lw=0)
    if logx:
        ax.set_xscale("log")
        ticks = sorted({round(float(r[x]), 6) for r in rows if r["method"] in methods})
        if len(ticks) > 6:  # thin crowded ticks (densities of different methods differ slightly)
            ticks = [t for i, t in enumerate(ticks) if i % 2 == 0]
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
    ax.set_xlabel("density (fraction of weights kept)" if x == "density" else x)
    ax.set_ylabel(ylabel or y)


def record(fig_dir: str | os.PathLike, file: str, *, title: str, caption: str, numbers: Dict | None = None) -> None:
    """Add (or replace) a figure's entry in ``<fig_dir>/captions.json``, read by ``pai.figindex``."""
    import json

    from .io import save_json

    path = Path(fig_dir) / "captions.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    entries = [e for e in entries if e["file"] != file]
    clean = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in (numbers or {}).items()}
    entries.append({"file": file, "title": title, "caption": caption, "numbers": clean})
    save_json(entries, path)


def finish(fig, fig_dir: str | os.PathLike, file: str, *, title: str, caption_text: str,
           numbers: Dict | None = None, setup: str = "") -> List[Path]:
    """Footer with the setup, save PNG+PDF, and record the caption: the last line of every figure cell."""
    if setup:
        caption(fig, setup)
    paths = save(fig, Path(fig_dir) / file)
    record(fig_dir, file, title=title, caption=f"{caption_text} {setup}".strip(), numbers=numbers)
    return paths
