"""Draw docs/images/normalization-axes.png: which values share one mean and variance in
BatchNorm, LayerNorm and GroupNorm (run from the repository root; needs matplotlib).

    python docs/images/normalization_axes.py
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

N, C, GROUP = 6, 8, 4                   # samples, channels, channels per group
DEPTH = 0.35                            # the H·W axis, drawn as a slanted depth
OUTPUT = Path(__file__).resolve().parent / "normalization-axes.png"


def _panel(axis, title: str, shared) -> None:
    """A grid of N rows (samples) × C columns (channels), each cell standing for all H·W
    positions (the slanted top and side); cells for which ``shared(n, c)`` is true are shaded:
    they are normalised together, with one μ and one σ²."""
    for n in range(N):
        for c in range(C):
            x, y = c, N - 1 - n
            colour = "#1f77b4" if shared(n, c) else "#f2f2f2"
            axis.add_patch(Rectangle((x, y), 1, 1, facecolor=colour, edgecolor="white"))
            if n == 0:  # the top face: depth along H·W
                axis.add_patch(Polygon([(x, y + 1), (x + DEPTH, y + 1 + DEPTH),
                                        (x + 1 + DEPTH, y + 1 + DEPTH), (x + 1, y + 1)],
                                       facecolor=colour, edgecolor="white", alpha=0.7))
            if c == C - 1:  # the side face
                axis.add_patch(Polygon([(x + 1, y), (x + 1 + DEPTH, y + DEPTH),
                                        (x + 1 + DEPTH, y + 1 + DEPTH), (x + 1, y + 1)],
                                       facecolor=colour, edgecolor="white", alpha=0.7))
    axis.set_xlim(-0.8, C + 0.8)
    axis.set_ylim(-0.8, N + 0.9)
    axis.set_aspect("equal")
    axis.axis("off")
    axis.set_title(title, fontsize=11)
    axis.text(C / 2, -0.55, "C (channels / features) →", ha="center", fontsize=9)
    axis.text(-0.3, N / 2, "← N (batch)", va="center", rotation=90, ha="right", fontsize=9)
    axis.text(C + DEPTH + 0.05, N + DEPTH + 0.1, "H, W", fontsize=9)


def main() -> None:
    figure = Figure(figsize=(11, 3.6), layout="constrained")
    axes = figure.subplots(1, 3)
    _panel(axes[0], "BatchNorm: one channel, all samples", lambda n, c: c == 2)
    _panel(axes[1], "LayerNorm: one sample, all channels", lambda n, c: n == 1)
    _panel(axes[2], f"GroupNorm: one sample, a group of {GROUP} channels",
           lambda n, c: n == 1 and c < GROUP)
    figure.suptitle("The shaded values share one mean and variance (each cell: all H×W "
                    "positions)", fontsize=11)
    figure.savefig(OUTPUT, dpi=100)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
