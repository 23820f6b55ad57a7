"""The geometry of the assessment's bar charts, drawn as SVG by the templates (no script:
the Content-Security-Policy allows none inline, and the PDF has none). Pure functions."""

from __future__ import annotations

from dataclasses import dataclass

from ..training.coverage import TownCoverage

# Town chart (viewBox units): names on the left, bars 0–100 %, values on the right.
LABEL_WIDTH = 120
BAR_AREA = 360
ROW_HEIGHT = 28
BAR_HEIGHT = 16
TOP = 8


@dataclass
class TownBar:
    name: str
    status: str  # reached, close, behind, none (TownCoverage.status)
    coverage_percent: float
    target_percent: float | None
    y: float
    width: float
    target_x: float | None


@dataclass
class TownChart:
    bars: list[TownBar]
    width: int
    height: int
    bar_x: int = LABEL_WIDTH
    bar_area: int = BAR_AREA
    bar_height: int = BAR_HEIGHT

    @property
    def value_x(self) -> int:
        return self.bar_x + self.bar_area + 8


def town_chart(towns: list[TownCoverage]) -> TownChart:
    """One bar per town: its coverage, with a mark at its target."""
    bars = []
    for n, town in enumerate(towns):
        coverage = min(max(town.coverage, 0.0), 1.0)
        target = town.target
        bars.append(
            TownBar(
                name=town.name,
                status=town.status,
                coverage_percent=round(town.coverage * 100, 1),
                target_percent=None if target is None else round(target * 100, 1),
                y=TOP + n * ROW_HEIGHT,
                width=round(coverage * BAR_AREA, 1),
                target_x=None
                if target is None
                else round(LABEL_WIDTH + min(target, 1.0) * BAR_AREA, 1),
            )
        )
    return TownChart(
        bars=bars, width=LABEL_WIDTH + BAR_AREA + 170, height=TOP * 2 + len(towns) * ROW_HEIGHT
    )


# Month chart: twelve columns, counts above them, month numbers below.
MONTH_PLOT_HEIGHT = 140
MONTH_STEP = 44
MONTH_BAR_WIDTH = 28
MONTH_LEFT = 12
MONTH_TOP = 22


@dataclass
class MonthBar:
    month: int
    count: int
    x: float
    y: float
    height: float

    @property
    def middle(self) -> float:
        return self.x + MONTH_BAR_WIDTH / 2


@dataclass
class MonthChart:
    bars: list[MonthBar]
    width: int = MONTH_LEFT * 2 + 12 * MONTH_STEP
    height: int = MONTH_TOP + MONTH_PLOT_HEIGHT + 26
    bar_width: int = MONTH_BAR_WIDTH
    baseline: int = MONTH_TOP + MONTH_PLOT_HEIGHT


def month_chart(months: list[int]) -> MonthChart:
    """Activities held per month, scaled to the busiest month."""
    most = max(months, default=0) or 1
    bars = []
    for n, count in enumerate(months):
        height = round(count / most * MONTH_PLOT_HEIGHT, 1)
        bars.append(
            MonthBar(
                month=n + 1,
                count=count,
                x=MONTH_LEFT + n * MONTH_STEP + (MONTH_STEP - MONTH_BAR_WIDTH) / 2,
                y=MONTH_TOP + MONTH_PLOT_HEIGHT - height,
                height=height,
            )
        )
    return MonthChart(bars=bars)
