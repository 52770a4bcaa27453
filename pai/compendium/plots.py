"""The figure styles the notebooks share: paper-ready, and every correlation states rho, p and n.

Figures are written as PNG (300 dpi) and PDF side by side, atomically, and each carries a footer
naming dataset, model, epochs and seeds (``caption``), so a figure lifted out of its notebook still
says what produced it.

- One colour per method in every figure (``PALETTE``, :func:`color`; a plugin's method one of
  ``PLUGIN_PALETTE``, which no pai method uses); a method's variants
  (``pai.compendium.variants``: "synflow (exact count)", "phew (graph walk)", ...) share its hue and differ by
  line style, marker and bar hatch (:func:`style_of`), and are named by their own labels.
- No legend, key or statistics box on data: :func:`place_legend`, :func:`place_text`,
  :func:`size_key` (a key wherever marker size carries a variable) and :func:`legend_outside` (one
  figure-level legend) from :mod:`pai.compendium.placement`; :func:`data_overlaps` is the check tests use.
- :func:`integer_ticks` for epoch axes; :func:`density_curves` puts the density actually kept on x;
  :func:`grouped_bars` for per-category bars with one colour per series.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence

import matplotlib


def _keep_backend() -> bool:
    """Whether the backend chosen by ``MPLBACKEND`` stays: a Jupyter kernel's (ipykernel sets the inline
    backend, interactive or under papermill; forcing Agg there makes ``plt.show()`` draw nothing into the
    notebook) or one the user named.  A worker process a kernel started inherits the inline backend but
    is no kernel, and scripts and CI without a display choose none: they get Agg (files only)."""
    chosen = os.environ.get("MPLBACKEND", "")
    if "backend_inline" in chosen:
        return "ipykernel" in sys.modules
    return bool(chosen)


if not _keep_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pai.utils.io import atomic_write  # noqa: E402
from pai.compendium.placement import (covered, data_overlaps, legend_outside, patch_handle, place_legend, place_text,  # noqa: E402,F401
                        size_handles, size_key, thin_tick_labels)
from pai.compendium.variants import base_of, variant_rank  # noqa: E402

PALETTE = {
    "random": "#7f7f7f", "random-erk": "#8c564b", "random-er": "#bcbd22", "magnitude": "#17becf",
    "xnet": "#ff7f0e", "rreg": "#d62728", "phew": "#2ca02c", "synflow": "#1f77b4", "synflow-l2": "#9467bd",
    "snip": "#e377c2", "grasp": "#aec7e8", "npb": "#000000", "pags": "#98df8a", "pegs": "#ff9896",
    "dense": "#333333", "random-graph": "#7f7f7f", "lth": "#c49c94", "itop": "#f7b6d2",
}


# TrueType (Type 42) fonts in PDF/PS: matplotlib's default Type 3 fonts are refused by publishers' PDF checks
EMBED_TRUETYPE = {"pdf.fonttype": 42, "ps.fonttype": 42}


def style() -> None:
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 300, "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
        "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
        "grid.alpha": 0.25, "figure.constrained_layout.use": True, **EMBED_TRUETYPE,
    })


# Hues near none of PALETTE's (teal, navy, gold, indigo, maroon, magenta, dark slate), for the methods of
# plugins; past seven plugin methods colours repeat
PLUGIN_PALETTE = ("#008080", "#000080", "#e6ab02", "#4b0082", "#800000", "#ff00ff", "#2f4f4f")


def color(method: str) -> str:
    """A fixed colour per method, shared by its variants (``"synflow (exact count)"`` is SynFlow's
    blue); a plugin's method (:mod:`pai.compendium.plugins`) gets its own (:func:`plugin_color`); other labels a
    stable one (crc32, not the salted ``hash``)."""
    import zlib

    from pai.compendium.plugins import methods as plugin_methods

    base = base_of(str(method))
    if str(method) not in PALETTE and base not in PALETTE and base in plugin_methods():
        return plugin_color(base, plugin_methods())
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return PALETTE.get(str(method)) or PALETTE.get(base) or cycle[zlib.crc32(base.encode()) % len(cycle)]


def plugin_color(name: str, others: Sequence[str] = ()) -> str:
    """A colour of :data:`PLUGIN_PALETTE` (none of pai's methods') for plugin method ``name``: the slot
    crc32 of its name picks, or the next free one when a plugin method before it (by name, among
    ``others``) took that slot; so the same methods always get the same colours, distinct while there are
    no more plugin methods than colours."""
    import zlib

    taken, n = set(), len(PLUGIN_PALETTE)
    for other in sorted(set(others) | {name}):
        slot = zlib.crc32(other.encode()) % n
        while slot in taken and len(taken) < n:
            slot = (slot + 1) % n
        if other == name:
            return PLUGIN_PALETTE[slot]
        taken.add(slot)
    raise AssertionError("unreachable: name is among the methods iterated")


LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v")
HATCHES = (None, "///", "...", "xxx")


def style_of(label: str) -> Dict:
    """``color``, ``linestyle``, ``marker`` and ``hatch`` of a method or variant label: the method's
    colour, and a style by variant rank (the faithful default solid with round markers)."""
    rank = variant_rank(str(label))
    return {"color": color(label), "linestyle": LINESTYLES[rank % len(LINESTYLES)],
            "marker": MARKERS[rank % len(MARKERS)], "hatch": HATCHES[rank % len(HATCHES)]}


def integer_ticks(ax, axis: str = "x") -> None:
    """Only whole numbers on ``axis`` (epochs): no 1.5 epochs."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def caption(fig, text: str) -> None:
    fig.text(0.5, -0.01, text, ha="center", va="top", fontsize=7, color="#444444", wrap=True)


def save(fig, path_stem: str | os.PathLike) -> List[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically (PDF fonts embedded as TrueType); return both
    paths.  Nothing is displayed here: the figure cell's ``plt.show()`` displays it once."""
    stem = Path(path_stem)
    out = []
    for ext in ("png", "pdf"):
        target = stem.with_suffix(f".{ext}")
        # no creation date in the PDF: the same figure gives the same bytes (DVC outputs stay stable)
        meta = {"CreationDate": None} if ext == "pdf" else None
        with plt.rc_context(EMBED_TRUETYPE):
            atomic_write(target, lambda tmp, ext=ext, meta=meta: fig.savefig(tmp, format=ext, bbox_inches="tight",
                                                                             metadata=meta))
        out.append(target)
    return out


def correlation_scatter(ax, x: Sequence[float], y: Sequence[float], *, groups: Sequence[str] | None = None,
                        xlabel: str = "", ylabel: str = "", title: str = "", fit: bool = True,
                        within: Sequence | None = None, stats_box: bool = True) -> Dict:
    """Scatter y against x (coloured by group) with a least-squares line and Pearson ρ, its 95% interval,
    p and n in a box placed on no data.  ``within`` (e.g. the density level of each point) adds the
    within-level partial correlation (:func:`pai.metrics.stats.partial_correlation`), the estimate that
    density alone cannot produce.  Returns ``rho, p, n, low, high`` (+ ``rho_within, p_within,
    low_within, high_within``)."""
    from pai.metrics.stats import correlation, partial_correlation

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    groups = np.asarray(groups if groups is not None else ["all"] * len(x))
    for g in dict.fromkeys(groups[ok]):
        sel = ok & (groups == g)
        st = style_of(str(g))
        ax.scatter(x[sel], y[sel], s=16, alpha=0.8, color=st["color"], marker=st["marker"], label=str(g),
                   edgecolors="none")
    c = correlation(x, y)
    out = {"rho": c.rho, "p": c.p_value, "n": c.n, "low": c.low, "high": c.high}
    if fit and c.n >= 3 and np.ptp(x[ok]) > 0:
        a, b = np.polyfit(x[ok], y[ok], 1)
        xs = np.linspace(x[ok].min(), x[ok].max(), 50)
        ax.plot(xs, a * xs + b, color="black", lw=1, ls="--", alpha=0.7)
    text = f"Pearson ρ = {c.rho:.2f} [{c.low:.2f}, {c.high:.2f}]\np = {c.p_value:.2g}, n = {c.n}"
    if within is not None:
        w = partial_correlation(x, y, groups=np.asarray(within, dtype=object))
        out.update(rho_within=w.rho, p_within=w.p_value, low_within=w.low, high_within=w.high)
        text += f"\nwithin density ρ = {w.rho:.2f} [{w.low:.2f}, {w.high:.2f}]"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if stats_box:
        place_text(ax, text)
    return out


def error_span(center, low, high) -> List[np.ndarray]:
    """``[center - low, high - center]`` for ``errorbar``/``bar``, clipped at 0: the mean of equal values
    can exceed their max by one rounding step, and matplotlib refuses a negative error."""
    center, low, high = (np.atleast_1d(np.asarray(v, float)) for v in (center, low, high))
    return [np.maximum(center - low, 0.0), np.maximum(high - center, 0.0)]


def density_curves(ax, rows: Iterable[Dict], *, y: str, methods: Sequence[str] | None = None,
                   x: str = "density", ylabel: str = "", logx: bool = True, band: str = "minmax",
                   by: str = "method") -> None:
    """Mean of ``y`` per (method, density) with a band over seeds (min-max as the SynFlow figures).

    x is the density each mask actually keeps (``density``; its mean over the seeds of one level), not the
    target.  ``by="label"`` draws one curve per variant label (``pai.compendium.variants.label_row``) in its
    method's colour and its own line style."""
    rows = list(rows)
    methods = methods or list(dict.fromkeys(r[by] for r in rows))
    for m in methods:
        # one point per level (a row's "level" or "target_density"), at the mean density its seeds keep:
        # a Bernoulli mask keeps a different density in every seed, and grouping by the kept density
        # would draw a zigzag through single runs instead of a mean over seeds
        kept: Dict[Any, List[float]] = {}
        pts: Dict[Any, List[float]] = {}
        for r in rows:
            if r[by] == m and r.get(y) is not None and np.isfinite(r[y]):
                level = r.get("level", r.get("target_density"))
                level = round(float(r[x]), 6) if level is None else level
                kept.setdefault(level, []).append(float(r[x]))
                pts.setdefault(level, []).append(float(r[y]))
        if not pts:
            continue
        levels = sorted(pts, key=lambda v: np.mean(kept[v]))
        xs = np.array([np.mean(kept[v]) for v in levels])
        vals = [np.array(pts[v]) for v in levels]
        mean = np.array([v.mean() for v in vals])
        lo = np.array([v.min() if band == "minmax" else v.mean() - v.std() for v in vals])
        hi = np.array([v.max() if band == "minmax" else v.mean() + v.std() for v in vals])
        st = style_of(m)
        ax.plot(xs, mean, marker=st["marker"], ms=3, lw=1.3, color=st["color"], ls=st["linestyle"], label=m)
        ax.fill_between(xs, lo, hi, color=st["color"], alpha=0.18, lw=0)
    if logx:
        ax.set_xscale("log")
        ticks = _level_ticks([float(r[x]) for r in rows if r[by] in methods])
        if len(ticks) > 6:  # thin crowded ticks
            ticks = [t for i, t in enumerate(ticks) if i % 2 == 0]
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(ticks, [f"{t:.2g}" for t in ticks])
    ax.set_xlabel("density (fraction of weights kept)" if x == "density" else x)
    ax.set_ylabel(ylabel or y)


def _level_ticks(values: Sequence[float], rtol: float = 0.05) -> List[float]:
    """One tick per level: the methods keep slightly different densities at one target (0.003008 and
    0.003001), so values within ``rtol`` of their neighbour form one level, ticked at its median."""
    out: List[List[float]] = []
    for v in sorted(values):
        if out and v <= out[-1][-1] * (1 + rtol):
            out[-1].append(v)
        else:
            out.append([v])
    return [float(np.median(group)) for group in out]


def grouped_bars(ax, categories: Sequence[str], series: Dict[str, Sequence], *, ylabel: str = "",
                 error: str = "minmax", width: float = 0.8) -> Dict[str, List[float]]:
    """Bars per category, one bar per series side by side: ``series[label][i]`` holds the values
    (seeds) of category ``i``; the bar is their mean, the error bar their min-max (``error="minmax"``)
    or none.  Each series has one colour (``style_of``; a variant's hatch) and one legend entry, so a
    series never shows several colours under one name.  Returns the means."""
    labels = list(series)
    step = width / max(1, len(labels))
    means: Dict[str, List[float]] = {}
    for j, lab in enumerate(labels):
        st = style_of(lab)
        xs, ms, lo, hi = [], [], [], []
        for i, vals in enumerate(series[lab]):
            v = np.asarray(vals, float)
            v = v[np.isfinite(v)]
            if v.size == 0:
                continue
            xs.append(i + (j - (len(labels) - 1) / 2) * step)
            ms.append(v.mean())
            lo.append(v.min())
            hi.append(v.max())
        means[lab] = ms
        if not xs:
            continue
        ax.bar(xs, ms, width=step, color=st["color"], hatch=st["hatch"], edgecolor="black", lw=0.4, label=lab,
               yerr=error_span(ms, lo, hi) if error == "minmax" else None, capsize=2)
    ax.set_xticks(range(len(categories)), list(categories))
    if ylabel:
        ax.set_ylabel(ylabel)
    return means


def record(fig_dir: str | os.PathLike, file: str, *, title: str, caption: str, numbers: Dict | None = None,
           legend: Sequence[str] = ()) -> None:
    """Add (or replace) a figure's entry in ``<fig_dir>/captions.json``, read by ``pai.compendium.figindex``; ``legend``:
    the names its legends show (:func:`legend_texts`)."""
    import json

    from pai.utils.io import save_json

    path = Path(fig_dir) / "captions.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    entries = [e for e in entries if e["file"] != file]
    clean = {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in (numbers or {}).items()}
    entry = {"file": file, "title": title, "caption": caption, "numbers": clean}
    if legend:
        entry["legend"] = list(legend)
    entries.append(entry)
    save_json(entries, path)


def legend_texts(fig) -> List[str]:
    """The entries of every legend drawn on ``fig`` (figure-level and per-axes), each once, in order."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return list(dict.fromkeys(t.get_text() for lg in legends for t in lg.get_texts()))


def finish(fig, fig_dir: str | os.PathLike, file: str, *, title: str, caption_text: str,
           numbers: Dict | None = None, setup: str = "") -> List[Path]:
    """Footer with the setup, save PNG+PDF, and record the caption: the last line of every figure cell."""
    if setup:
        caption(fig, setup)
    thin_tick_labels(fig)
    bad = covered(fig)
    if bad:  # a box on data: place it with place_legend / place_text / legend_outside
        import warnings

        warnings.warn(f"{file}: boxes cover data: {'; '.join(bad)}", stacklevel=2)
    paths = save(fig, Path(fig_dir) / file)
    record(fig_dir, file, title=title, caption=f"{caption_text} {setup}".strip(), numbers=numbers,
           legend=legend_texts(fig))
    return paths
