"""Colours that tell data series apart, for people with any colour vision, in light and dark themes.

The hues are Okabe and Ito's set, chosen to stay distinct with the common colour-vision
deficiencies; a darker variant reads on light backgrounds and a lighter one on dark. Colour is
never the only cue: the charts also differ in line style and markers, the gauge in labels.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

from widgets.palette import is_dark

# On light: blue, vermillion, bluish green, reddish purple, orange, sky blue, grey, yellow, black, brown.
# On dark: sky blue, orange, bluish green, reddish purple, yellow, light grey, vermillion, blue, white, tan.
# Ten, so the memory gauge's terms (ten at most) never share a colour.
_ON_LIGHT = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#8C8C8C",
    "#F0E442",
    "#000000",
    "#8B5A2B",
)
_ON_DARK = (
    "#56B4E9",
    "#E69F00",
    "#2FC79A",
    "#E08FC0",
    "#F0E442",
    "#BBBBBB",
    "#FF7A45",
    "#0072B2",
    "#FFFFFF",
    "#C8A27A",
)


def series_color(index: int, palette: QPalette) -> QColor:
    """The colour of the ``index``-th series (or bar segment), repeating after ten."""
    colors = _ON_DARK if is_dark(palette) else _ON_LIGHT
    return QColor(colors[index % len(colors)])
