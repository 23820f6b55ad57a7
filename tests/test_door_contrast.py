"""The door's result banners and status badges are readable in a bright hall (WCAG 2.x AA).

Text on a coloured banner needs a contrast ratio of at least 4.5:1. The colours are read
from the stylesheets themselves, so a colour changed there is checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[1] / "static" / "css"
AA_NORMAL_TEXT = 4.5


def css_rules(name: str) -> dict[str, dict[str, str]]:
    """selector -> {property: value}, later rules overriding earlier ones (flat CSS only:
    rules inside @media blocks are left out)."""
    text = re.sub(r"/\*.*?\*/", "", (CSS / name).read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", text)
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        declarations = {}
        for declaration in body.split(";"):
            if ":" in declaration:
                prop, value = declaration.split(":", 1)
                declarations[prop.strip()] = value.strip()
        for selector in selectors.split(","):
            rules.setdefault(selector.strip(), {}).update(declarations)
    return rules


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.strip().lstrip("#").lower()
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    assert re.fullmatch(r"[0-9a-f]{6}", value), f"not a #rrggbb colour: {hex_colour}"
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def named_colour(value: str) -> str:
    return {"#fff": "#ffffff", "white": "#ffffff", "#000": "#000000"}.get(value, value)


def test_the_check_knows_the_reported_ratio():
    # The measurement: white on the old green banner.
    assert round(contrast("#ffffff", "#12b76a"), 2) == 2.62
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0


# (stylesheet, selector of the coloured box, selector giving its text colour)
BANNERS = [
    ("checkin.css", ".result-ok", ".result"),
    ("checkin.css", ".result-warn", ".result"),
    ("checkin.css", ".result-bad", ".result"),
    ("checkin.css", ".result-idle", ".result-idle"),
    ("site.css", ".badge.ok", ".badge.ok"),
    ("site.css", ".badge.wait", ".badge.wait"),
    ("site.css", ".badge.bad", ".badge.bad"),
    ("site.css", ".primary", ".primary"),
    ("site.css", ".danger", ".danger"),
]


@pytest.mark.parametrize(("sheet", "box", "text_from"), BANNERS, ids=[b[1] for b in BANNERS])
def test_banner_text_reaches_aa_contrast(sheet, box, text_from):
    rules = css_rules(sheet)
    background = rules[box]["background"]
    foreground = rules[box].get("color") or rules[text_from]["color"]
    ratio = contrast(named_colour(foreground), named_colour(background))
    assert ratio >= AA_NORMAL_TEXT, f"{box}: {foreground} on {background} is {ratio:.2f}:1"


# Coloured text on the page's white or light grey (recent scans, "已签到" in the search).
TEXTS = [
    ("checkin.css", ".search-results .done", "#ffffff"),
    ("checkin.css", ".recent .r-ok", "#f4f6f8"),
    ("checkin.css", ".recent .r-warn", "#f4f6f8"),
    ("checkin.css", ".recent .r-bad", "#f4f6f8"),
    ("checkin.css", ".counter small", "#f4f6f8"),
]


@pytest.mark.parametrize(("sheet", "selector", "background"), TEXTS, ids=[t[1] for t in TEXTS])
def test_coloured_text_reaches_aa_contrast(sheet, selector, background):
    foreground = css_rules(sheet)[selector]["color"]
    ratio = contrast(named_colour(foreground), background)
    assert ratio >= AA_NORMAL_TEXT, f"{selector}: {foreground} is {ratio:.2f}:1"
