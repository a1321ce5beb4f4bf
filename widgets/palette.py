"""Colours worked out from the current palette, so every widget reads well in light and dark themes.

Nothing here is a fixed colour on its own: each hue is given a lightness that suits the palette's
base colour, and tints are mixed into that base, so a theme switch only needs a repaint.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

# Hues (degrees) for the roles of a conversation; roles not listed are drawn in a neutral grey.
_ROLE_HUES = {"user": 212, "assistant": 140, "tool": 32}
_NEGATIVE_HUE = 4


def is_dark(palette: QPalette) -> bool:
    """Whether text is drawn light on dark, judged from the base (text entry) colour."""
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def mix(base: QColor, other: QColor, amount: float) -> QColor:
    """``base`` moved ``amount`` (0..1) of the way towards ``other``."""
    return QColor.fromRgbF(
        base.redF() + (other.redF() - base.redF()) * amount,
        base.greenF() + (other.greenF() - base.greenF()) * amount,
        base.blueF() + (other.blueF() - base.blueF()) * amount,
    )


def _accent(hue: int, palette: QPalette) -> QColor:
    """A saturated colour of ``hue`` that stays readable as text on the palette's base colour."""
    return QColor.fromHsl(hue, 150, 175) if is_dark(palette) else QColor.fromHsl(hue, 170, 85)


def role_color(role: str, palette: QPalette) -> QColor:
    """The colour of a role's label and badge: blue for the user, green for the assistant."""
    hue = _ROLE_HUES.get(role)
    if hue is None:
        return palette.color(QPalette.ColorRole.PlaceholderText)
    return _accent(hue, palette)


def role_tint(role: str, palette: QPalette) -> QColor:
    """A faint background for a role's text, with body text still readable on it."""
    base = palette.color(QPalette.ColorRole.Base)
    return mix(base, role_color(role, palette), 0.28 if is_dark(palette) else 0.14)


def negative_color(palette: QPalette) -> QColor:
    """Red for errors and refused drops; Qt's palette has no role for it."""
    return _accent(_NEGATIVE_HUE, palette)
