"""Writing a bench run's outputs: report.md, curve.csv, decisions.csv.gz and cost_quality.png.

Kept apart from :mod:`optiroute.bench.evaluate` so the measurement has no formatting in it and the report can
be rewritten from a :class:`~optiroute.bench.evaluate.BenchResult` alone. matplotlib is optional (the
``bench`` extra) and imported lazily with the Agg backend; without it the PNG is skipped with a note.
"""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import numpy as np

from optiroute.bench.evaluate import BenchResult
from optiroute.bench.verdict import verdict_lines

__all__ = ["markdown", "plot_title", "write_outputs"]


def _f(x: float | None, fmt: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return format(x, fmt)


def _pct(x: float | None) -> str:
    return "not reached" if x is None else f"{100 * x:.1f} %"


def markdown(r: BenchResult) -> str:
    """The report as markdown tables (also the body of a BENCHMARKS.md fragment)."""
    b_q, b_c = r.singles[r.best_single]
    ch_q, ch_c = r.singles[r.cheapest]
    lines = []
    if r.verdict is not None:
        said = verdict_lines(r.verdict)
        lines += ["## Bottom line", "", said[0], "", *[f"- {x}" for x in said[1:]], "", "## Details", ""]
    lines += [
        f"Data `{r.data}`: fitted on {r.n_train} train prompts, evaluated on {r.n_test} test prompts; "
        f"{len(r.models)} models; quality predictor: {r.predictor}. Best single model **{r.best_single}** "
        f"{b_q:.3f} at ${b_c:.6f}/prompt; cheapest {r.cheapest} {ch_q:.3f} at ${ch_c:.6f}; oracle "
        f"{r.oracle[0]:.3f} at ${r.oracle[1]:.6f}. Missing cells in the test outcomes: {r.missing_cells} "
        "(a prompt whose chosen model has no outcome is left out of that point's mean).",
        "",
        f"AIQ: RouterBench area under the non-decreasing convex hull, cost normalised to "
        f"[${r.c_lo:.6f}, ${r.c_hi:.6f}] (cheapest, most expensive single model). Quality at x % is the "
        f"best measured operating point at <= x % of {r.best_single}'s cost; the match fraction is read "
        "on the hull. `predictor <kind>` rows are routers fitted on the same train split with that "
        "quality predictor and swept the same way; **router** is the one `--predictor` chose. "
        "`predictor <kind>: quality matrix, linear cost sweep` rows take that router's predicted quality "
        "alone and trace argmax(quality - lambda x mean train cost) like the baselines, so the gap to the "
        "`predictor <kind>` row is what the scorer (log-cost scale) and the policy filters add or lose.",
        "",
        "| method | points | AIQ | quality at 25 % cost | quality at 50 % cost | cost fraction to match best |",
        "|---|---|---|---|---|---|",
    ]
    for s in r.summaries:
        name = f"**{s.method}**" if s.method == "router" else s.method
        lines.append(
            f"| {name} | {s.n_points} | {_f(s.aiq)} | {_f(s.quality_at_25)} | {_f(s.quality_at_50)} | "
            f"{_pct(s.match_cost_fraction)} |"
        )
    if r.pair is not None:
        pr = r.pair
        lines += [
            "",
            f"Strong/weak pair (RouteLLM): strong {pr.strong} {pr.strong_quality:.3f}, weak {pr.weak} "
            f"{pr.weak_quality:.3f}. Each method sends the share of prompts with the largest predicted "
            "gap to the strong model (21 shares, 0-100 %); CPT(x %) is the share of strong calls "
            "needed to recover x % of the gap.",
            "",
            "| method | APGR | CPT(50 %) | CPT(80 %) |",
            "|---|---|---|---|",
        ]
        lines += [f"| {row.method} | {_f(row.apgr)} | {_pct(row.cpt50)} | {_pct(row.cpt80)} |" for row in pr.rows]
    if r.overhead is not None:
        o = r.overhead
        lines += [
            "",
            "| decision overhead | value |",
            "|---|---|",
            f"| decide_batch of {o.n_batch} prompts (incl. encode) | {o.decide_batch_s:.2f} s = "
            f"{o.decisions_per_s:.0f} decisions/s |",
            f"| raw encode of the same prompts | {o.encode_batch_s:.2f} s |",
            f"| batch ratio (decide / encode) | {o.batch_ratio:.2f} |",
            f"| median decide() of one prompt ({o.n_single} prompts) | {o.decide_one_ms:.1f} ms |",
            f"| median raw encode of one prompt | {o.encode_one_ms:.1f} ms |",
            f"| single ratio (decide / encode) | {o.single_ratio:.2f} |",
        ]
    lines += [
        "",
        "| operating point | cost weight | mean score | mean $ / prompt | left out (missing cell) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {p.point} | {p.cost_weight:.3f} | {_f(p.mean_score)} | {_f(p.mean_cost_usd, '.6f')} | {p.left_out} |"
        for p in r.router
    ]
    lines += ["", "| single model | mean score | mean $ / prompt |", "|---|---|---|"]
    for m, (q, c) in sorted(r.singles.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {m} | {_f(q)} | {_f(c, '.6f')} |")
    lines += guard_section(r)
    lines += ["", *[f"Note: {n}" for n in r.notes]] if r.notes else []
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- routing vs not routing (guard check)
def guard_section(r: BenchResult) -> list[str]:
    """Routing against not routing on test (:class:`~optiroute.bench.evaluate.GuardCheck`)."""
    g = r.guard
    if g is None:
        return []
    verdict = "never worse than one model" if g.never_worse else "**worse than one model**"
    lines = [
        "",
        f"Routing vs not routing (test): router AIQ {g.router_aiq:.3f}, single models' hull {g.single_hull_aiq:.3f}, "
        f"margin {g.margin:+.3f}: {verdict} (noise allowance 0.003). Per operating point, the best single model "
        "costing no more on test (cost weight 0: at any cost); *guard* names the model the router's "
        "train-only cross-validated guard sent that point to ('route' where routing measured better).",
        "",
        "| cost weight | router score | router $ | best single at <= cost | its score | its $ | gain | guard |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {x.cost_weight:.3f} | {_f(x.router_score)} | {_f(x.router_cost_usd, '.6f')} | {x.single} | "
              f"{_f(x.single_score)} | {_f(x.single_cost_usd, '.6f')} | {x.gain:+.3f} | {x.guard_single or 'route'} |"
              for x in g.rows]
    return lines


def write_outputs(
    r: BenchResult, decisions: np.ndarray, prompt_ids: list[str], out: Path
) -> list[Path]:
    """Write the four outputs into ``out`` (created); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.md", out / "curve.csv", out / "decisions.csv.gz"]
    written[0].write_text("# optiroute bench\n\n" + markdown(r), encoding="utf-8")
    with written[1].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["point", "cost_weight", "mean_cost_usd", "mean_score"])
        for p in r.router:
            w.writerow([p.point, p.cost_weight, f"{p.mean_cost_usd:.8g}", f"{p.mean_score:.6g}"])
    with gzip.open(written[2], "wt", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt_id", "point", "model"])
        for i, row in enumerate(decisions):
            for pid, j in zip(prompt_ids, row, strict=True):
                w.writerow([pid, i, r.models[int(j)]])
    png = _plot(r, out / "cost_quality.png")
    if png is not None:
        written.append(png)
    return written


def plot_title(r: BenchResult) -> str:
    """The plot's title, from the data: its set's name (the directory, or its parent when the directory
    has a generic name such as ``data``), the test prompts and the models."""
    path = Path(r.data).resolve()
    name = path.name
    if name.lower() in _GENERIC and path.parent.name:
        name = path.parent.name
    return f"{name}: {r.n_test} test prompts, {len(r.models)} models"


_GENERIC = {"data", "dataset", "datasets", "test", "tests", "bench", "input", "inputs", ".", ""}


def _plot(r: BenchResult, path: Path) -> Path | None:
    """Router, its hull, the best single model (and the other single models as grey dots, those on
    their own frontier labelled), the oracle and at most two baselines; legend below the axes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        r.notes.append("cost_quality.png not written: install matplotlib (pip install 'optiroute[bench]').")
        return None
    from optiroute.metrics.curves import upper_hull

    fig, ax = plt.subplots(figsize=(8, 6))
    singles = {m: (c, q) for m, (q, c) in r.singles.items()}
    ax.scatter([c for c, _ in singles.values()], [q for _, q in singles.values()], s=16, c="grey",
               label="single models", zorder=2)
    frontier = {p for p in upper_hull(singles.values())}
    labelled = {m for m, p in singles.items() if p in frontier} | {r.best_single, r.cheapest}
    for m in sorted(labelled):
        c, q = singles[m]
        ax.annotate(m, (c, q), fontsize=7, xytext=(4, -9 if m != r.best_single else 4), textcoords="offset points",
                    color="black" if m == r.best_single else "dimgrey",
                    fontweight="bold" if m == r.best_single else "normal")
    b_c, b_q = singles[r.best_single]
    ax.scatter([b_c], [b_q], s=60, facecolor="none", edgecolor="black", lw=1.2, zorder=4,
               label=f"best single model ({r.best_single})")
    shown = [n for n in r.baselines if n.startswith("random mix")][:1]
    shown += [n for n in r.baselines if n.startswith("plain kNN")][:1]
    for name, (color, ls) in zip(shown[:2], (("black", ":"), ("tab:orange", "--")), strict=False):
        pts = sorted(r.baselines[name])
        ax.plot([c for c, _ in pts], [q for _, q in pts], ls, color=color, lw=1, label=name)
    rp = sorted((p.mean_cost_usd, p.mean_score) for p in r.router)
    ax.plot([c for c, _ in rp], [q for _, q in rp], "o", color="tab:blue", ms=4, label="router operating points",
            zorder=3)
    hull = upper_hull(rp)
    ax.plot([c for c, _ in hull], [q for _, q in hull], "-", color="tab:blue", lw=2,
            label="router hull (its AIQ is the area under it)", zorder=3)
    ax.scatter([r.oracle[1]], [r.oracle[0]], marker="*", s=120, color="gold", edgecolor="k",
               label="oracle (best model per prompt, in hindsight)", zorder=4)
    ax.annotate(f"oracle {r.oracle[0]:.2f}", (r.oracle[1], r.oracle[0]), fontsize=7, xytext=(5, 3),
                textcoords="offset points")
    if r.verdict is not None and r.verdict.match_cost_fraction is not None:
        match_c = r.verdict.match_cost_fraction * b_c
        ax.annotate(f"matches {r.best_single}\nat {100 * r.verdict.match_cost_fraction:.0f} % of its cost",
                    (match_c, b_q), xytext=(-10, 18), textcoords="offset points", fontsize=7, ha="right",
                    arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per prompt (USD, log scale)")
    ax.set_ylabel("mean score on the test split")
    ax.set_title(plot_title(r), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
