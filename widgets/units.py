"""How the charts and the memory gauge write quantities: bytes in GiB, rates, percentages.

Memory is counted in binary units (GiB) because that is what NVML, ``nvidia-smi`` and the
estimator report; a "24 GB" card shows as 22.5 GiB or so, and saying GiB keeps them in step.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


def format_bytes(count: float) -> str:
    """``count`` bytes for a person: "14.2 GiB", "512 MiB", "3 KiB", never wrapped between number and unit."""
    if abs(count) >= GIB:
        return f"{count / GIB:,.1f}\u00a0GiB"
    if abs(count) >= MIB:
        return f"{count / MIB:,.0f}\u00a0MiB"
    return f"{count / 1024:,.0f}\u00a0KiB"


@dataclass(frozen=True)
class Unit:
    """What a chart's values measure: the axis label, the factor applied to the raw values
    before plotting (bytes are plotted as GiB) and the format of one value in the legend."""

    label: str = ""
    scale: float = 1.0
    value_format: str = "{:,.4g}"

    def format(self, value: float) -> str:
        """One raw value as the legend shows it, with its unit."""
        text = self.value_format.format(value * self.scale)
        return f"{text}\u00a0{self.label}" if self.label else text


PLAIN = Unit()
LEARNING_RATE = Unit(value_format="{:.3g}")
GIBIBYTES = Unit("GiB", 1 / GIB, "{:,.1f}")
PERCENT = Unit("%", value_format="{:.0f}")
TOKENS_PER_SECOND = Unit("tokens/s", value_format="{:,.0f}")
CELSIUS = Unit("°C", value_format="{:.0f}")
WATTS = Unit("W", value_format="{:.0f}")
