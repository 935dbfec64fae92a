"""Window presets per modality, with user overrides from the configuration file.

CT values are in Hounsfield units and come from Radiopaedia's "Windowing (CT)" article
(https://radiopaedia.org/articles/windowing-ct), which lists the settings most departments
start from: brain W:80 L:40, subdural W:130-300 L:50-100, stroke W:8 L:32 (or W:40 L:40),
lungs W:1500 L:-600, mediastinum W:350 L:50, soft tissue W:350-400 L:20-60, liver W:150 L:30,
bone W:1800 L:400. Where the article gives a range the middle of it is used. Other modalities
have no absolute scale, so they get the file's own windows and the full dynamic range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from tuiviewer.exceptions import ConfigError, RenderError
from tuiviewer.render.lut import VoiFunction, Window, full_range_window, windows_from_dataset

RADIOPAEDIA = "Radiopaedia, Windowing (CT), https://radiopaedia.org/articles/windowing-ct"


@dataclass(frozen=True)
class Preset:
    """A named window the viewer offers on a number key."""

    name: str
    """Shown in the preset list and the W/L corner, e.g. ``"lung"``."""
    window: Window
    """Centre/width in modality units (HU for CT)."""
    source: str = ""
    """Where the values come from (a reference, ``"file"``, ``"image"`` or ``"config"``)."""


def _ct(name: str, center: float, width: float) -> Preset:
    return Preset(name, Window(center, width, explanation=name), RADIOPAEDIA)


#: Built-in CT presets, in number-key order.
CT_PRESETS: tuple[Preset, ...] = (
    _ct("brain", 40, 80),
    _ct("subdural", 75, 215),
    _ct("stroke", 32, 8),
    _ct("lung", -600, 1500),
    _ct("mediastinum", 50, 350),
    _ct("abdomen", 40, 400),
    _ct("liver", 30, 150),
    _ct("bone", 400, 1800),
)


def parse_overrides(
    data: Mapping[str, Any], *, where: str = "config"
) -> dict[str, tuple[Preset, ...]]:
    """User presets from the ``[presets]`` table of the TOML config.

    Expected shape, per modality (upper-case DICOM Modality), name → ``[center, width]`` or
    ``{center = .., width = .., function = "LINEAR" | "LINEAR_EXACT" | "SIGMOID"}``::

        [presets.CT]
        brain = [40, 80]
        "posterior fossa" = { center = 45, width = 120 }

    Raises:
        ConfigError: naming ``where`` and the offending key.
    """
    result: dict[str, tuple[Preset, ...]] = {}
    for modality, table in data.items():
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"{where}: presets.{modality} must be a table of name = [center, width], "
                f"not {table!r}."
            )
        presets = []
        for name, value in table.items():
            key = f"presets.{modality}.{name}"
            function = VoiFunction.LINEAR
            center: Any
            width: Any
            if isinstance(value, Mapping):
                center, width = value.get("center"), value.get("width")
                raw_function = value.get("function", "LINEAR")
                try:
                    function = VoiFunction(str(raw_function).upper())
                except ValueError:
                    raise ConfigError(
                        f"{where}: {key}.function {raw_function!r} is not LINEAR, "
                        "LINEAR_EXACT or SIGMOID."
                    ) from None
            elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
                center, width = value[0], value[1]
            else:
                raise ConfigError(f"{where}: {key} = {value!r} is not [center, width].")
            if not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in (center, width)
            ):
                raise ConfigError(f"{where}: {key} needs numeric center and width, got {value!r}.")
            try:
                window = Window(float(center), float(width), function, str(name))
            except RenderError as exc:
                raise ConfigError(f"{where}: {key}: {exc.message}") from None
            presets.append(Preset(str(name), window, "config"))
        result[str(modality).upper()] = tuple(presets)
    return result


def presets_for(
    modality: str,
    ds: Dataset | None = None,
    values: np.ndarray | None = None,
    overrides: Mapping[str, Sequence[Preset]] | None = None,
    frame: int = 0,
) -> list[Preset]:
    """The presets offered for an image, in number-key order.

    CT: the built-in list, with user presets replacing those of the same name and new ones
    appended. Other modalities: the file's windows (for ``frame``), then the full dynamic range
    of ``values`` (modality-LUT output), then user presets for that modality.
    """
    modality = (modality or "").upper()
    user = list(overrides.get(modality, ())) if overrides else []
    if modality == "CT":
        by_name = {p.name: p for p in user}
        merged = [by_name.pop(p.name, p) for p in CT_PRESETS]
        return merged + [p for p in user if p.name in by_name]
    result: list[Preset] = []
    if ds is not None:
        for i, window in enumerate(windows_from_dataset(ds, frame)):
            result.append(Preset(window.explanation or f"file window {i + 1}", window, "file"))
    if values is not None and np.asarray(values).size:
        result.append(Preset("full range", full_range_window(values), "image"))
    return result + user
