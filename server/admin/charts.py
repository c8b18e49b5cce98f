"""Bar charts as numbers: the geometry an SVG template draws (no chart library, no script)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 28


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True, slots=True)
class BarChart:
    title: str
    bars: list[Bar]
    y_ticks: list[tuple[float, int]]
    x_labels: list[tuple[float, str]]
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM

    @property
    def summary(self) -> str:
        busiest = max(self.bars, key=lambda bar: bar.value, default=None)
        if busiest is None or busiest.value == 0:
            return f"{self.title}: no calls."
        return f"{self.title}: {self.total} in total, most at {busiest.label} ({busiest.value})."


def nice_ceiling(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    magnitude = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(title: str, points: Sequence[tuple[str, int]], *, label_every: int = 1) -> BarChart:
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max((value for _, value in points), default=0))
    slot = plot_width / max(len(points), 1)
    bars: list[Bar] = []
    x_labels: list[tuple[float, str]] = []
    for index, (label, value) in enumerate(points):
        height = plot_height * value / top
        x = LEFT + index * slot
        bars.append(
            Bar(
                x=x + slot * 0.1,
                y=TOP + plot_height - height,
                width=slot * 0.8,
                height=height,
                label=label,
                value=value,
            )
        )
        if index % label_every == 0:
            x_labels.append((x + slot / 2, label))
    y_ticks = [
        (TOP + plot_height * (1 - fraction), round(top * fraction)) for fraction in ((0, 0.5, 1) if top > 1 else (0, 1))
    ]
    return BarChart(title=title, bars=bars, y_ticks=y_ticks, x_labels=x_labels, total=sum(value for _, value in points))
