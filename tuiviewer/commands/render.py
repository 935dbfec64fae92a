"""``tuiviewer render FILE -o OUT.png``: the viewer's image, written as a PNG; with ``--plane``,
a reformat of the series in a folder (:func:`run_render_plane`).

The argparse wiring lives in :mod:`tuiviewer.cli`; this module turns its arguments into one
:func:`tuiviewer.render.pipeline.render` call and every failure into a single line on stderr
with exit status 1, so scripts and the dcmtk comparison tests can rely on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import DicomReadError, NotDicomError, RenderError, TuiviewerError
from tuiviewer.render.lut import VoiFunction, Window
from tuiviewer.render.pipeline import RenderRequest, render
from tuiviewer.render.png import write_png


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer render`` command line."""
    if args.plane is not None:
        return run_render_plane(
            args.file,
            args.output,
            plane=args.plane,
            at=args.at,
            slab=args.slab,
            projection=args.project,
            window=args.window,
            size=args.size,
            stdout=stdout,
            stderr=stderr,
        )
    return run_render(
        args.file,
        args.output,
        frame=args.frame,
        window=args.window,
        size=args.size,
        stdout=stdout,
        stderr=stderr,
    )


def read_image_dataset(path: Path) -> Dataset:
    """Read ``path`` fully (pixel data included).

    Files without the 128-byte preamble and "DICM" prefix are accepted when a forced read finds
    Pixel Data or a SOP Class UID in them (old ACR-NEMA style files, bare datasets); anything
    else is :class:`NotDicomError`.
    """
    if not path.exists():
        raise DicomReadError(f"File {str(path)!r} does not exist.")
    if path.is_dir():
        raise DicomReadError(
            f"{str(path)!r} is a folder, not a DICOM file; to reformat the series in it, add "
            "--plane axial, coronal or sagittal."
        )
    try:
        return read_dicom(path)
    except InvalidDicomError:
        pass
    except DicomReadError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise DicomReadError(f"File {path.name!r} cannot be read: {exc}") from exc
    try:
        ds = read_dicom(path, force=True)
        if "PixelData" in ds or "SOPClassUID" in ds:
            return ds
    except DicomReadError:
        raise
    except Exception:  # noqa: BLE001 - any parse failure of a forced read means "not DICOM"
        pass
    raise NotDicomError(f"File {path.name!r} is not DICOM: no 'DICM' at offset 128.")


def _window_function(ds: Dataset) -> VoiFunction:
    raw = str(ds.get("VOILUTFunction", "") or "").strip().upper()
    return VoiFunction(raw) if raw in VoiFunction.__members__ else VoiFunction.LINEAR


def _failed(path: Path, exc: Exception, unexpected: str, stderr: TextIO) -> int:
    """One line on ``stderr`` for a failure: our message, or ``unexpected`` and the reason."""
    if isinstance(exc, TuiviewerError):
        print(f"tuiviewer render: {path.name}: {exc.message}", file=stderr)
    else:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        print(f"tuiviewer render: {path.name}: {unexpected} ({reason}).", file=stderr)
    return 1


def run_render(
    path: str | Path,
    out: str | Path,
    *,
    frame: int = 1,
    window: tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Render ``path`` to the PNG ``out``; return the exit status (0 written, 1 failed).

    Args:
        frame: 1-based frame number, as DICOM Frame Numbers and ``dcmj2pnm +F`` count.
        window: explicit (center, width) in modality units, applied with the file's VOI LUT
            Function (LINEAR when absent); None uses the file's first window, else its VOI LUT,
            else the full range, as the viewer does when it opens the image.
        size: (width, height) box to fit in, honouring pixel spacing; None for native size.
        stdout: receives one line describing the file written.
        stderr: receives one line per failure, prefixed ``tuiviewer render:``.
    """
    path, out = Path(path), Path(out)
    try:
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
            raise RenderError(f"Frame number {frame!r} must be 1 or more.")
        ds = read_image_dataset(path)
        chosen = None
        if window is not None:
            chosen = Window(
                float(window[0]), float(window[1]), _window_function(ds), "command line"
            )
        request = RenderRequest(frame=frame - 1, window=chosen, size=size)
        image = render(ds, request)
        try:
            write_png(out, image.pixels)
        except OSError as exc:
            raise RenderError(f"Cannot write {str(out)!r}: {exc.strerror or exc}.") from exc
    except Exception as exc:  # noqa: BLE001 - a corrupt file must give one line, not a traceback
        return _failed(
            path, exc, "the image cannot be decoded; the file is damaged or unusual", stderr
        )
    height, width = image.pixels.shape[:2]
    used = f", window {image.window.center:g}/{image.window.width:g}" if image.window else ""
    print(f"Wrote {out} ({width}x{height} {image.mode}{used}).", file=stdout)
    return 0


def _series_files(path: Path) -> list[Path]:
    """The image files of the one series in folder (or file) ``path``, header-scanned."""
    from tuiviewer.dicom.scanning import scan

    records = [r for batch in scan([path]) for r in batch]
    images = [r for r in records if r.rows and r.columns]
    if not images:
        raise RenderError(f"{str(path)!r} holds no DICOM image.")
    series = {r.series_uid for r in images}
    if len(series) > 1:
        raise RenderError(
            f"{str(path)!r} holds {len(series)} series; give the folder of one series."
        )
    return [r.path for r in images]


def run_render_plane(
    path: str | Path,
    out: str | Path,
    *,
    plane: str,
    at: tuple[float, float, float] | None = None,
    slab: float = 0.0,
    projection: str = "mip",
    window: tuple[float, float] | None = None,
    size: tuple[int, int] | None = None,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Render a reformat of the series in folder ``path`` (or of a multi-frame file) to PNG.

    The plane passes through ``at`` (patient mm; default the volume's centre voxel), at the
    volume's own resolution with square pixels unless ``size`` asks for a box; coronal and
    sagittal have the patient's head at the top. Slices left out of the volume and gaps are
    listed on ``stdout`` after the line saying what was written. Returns 0 or 1 like
    :func:`run_render`.
    """
    from tuiviewer.render.mpr import Plane, PlaneRequest, Projection, extract_plane
    from tuiviewer.render.volume import load_volume

    path, out = Path(path), Path(out)
    try:
        if not path.exists():
            raise DicomReadError(f"{str(path)!r} does not exist.")
        try:
            chosen_projection = Projection(projection.lower())
        except ValueError:
            raise RenderError(
                f"Projection {projection!r} is not one of mip, minip, mean."
            ) from None
        volume, rejected = load_volume(_series_files(path))
        chosen = None
        if window is not None:
            chosen = Window(float(window[0]), float(window[1]), explanation="command line")
        request = PlaneRequest(
            plane=Plane.standard(plane),
            at=at,
            slab=slab,
            projection=chosen_projection,
            size=size,
            window=chosen,
        )
        image = extract_plane(volume, request)
        assert image is not None  # no cancel event
        try:
            write_png(out, image.pixels)
        except OSError as exc:
            raise RenderError(f"Cannot write {str(out)!r}: {exc.strerror or exc}.") from exc
    except Exception as exc:  # noqa: BLE001 - a corrupt file must give one line, not a traceback
        return _failed(path, exc, "the series cannot be reformatted", stderr)
    height, width = image.pixels.shape
    x, y, z = image.at
    print(
        f"Wrote {out} ({width}x{height} L, window {image.window.center:g}/{image.window.width:g}, "
        f"{plane} at ({x:.1f}, {y:.1f}, {z:.1f}) mm, {image.pixel_mm:.3g} mm pixels).",
        file=stdout,
    )
    for note in image.notes:
        print(f"  {note[0].upper()}{note[1:]}.", file=stdout)
    if rejected:
        print(f"  {len(rejected)} image(s) left out of the volume:", file=stdout)
        for item in rejected[:20]:
            print(f"    {item.reason}", file=stdout)
    return 0
