"""Image objects the pydicom wheel lacks, built in code for the rendering tests.

Each builder returns an in-memory :class:`~pydicom.dataset.Dataset` with file meta (Explicit VR
Little Endian) whose pixel values follow a formula the test can restate, so expected display
values are derived from the standard, not from our own output. :func:`save` writes one to disk
for ``tuiviewer render`` and ``dcmj2pnm``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"


def _base(
    sop_class: str,
    rows: int,
    cols: int,
    *,
    bits_allocated: int = 16,
    bits_stored: int | None = None,
    signed: bool = False,
    samples: int = 1,
    photometric: str = "MONOCHROME2",
    modality: str = "OT",
) -> Dataset:
    uid = generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Render^Test"
    ds.PatientID = "RENDER"
    ds.Modality = modality
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored or bits_allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    return ds


def ramp(rows: int, cols: int, lo: int, hi: int) -> np.ndarray:
    """int64 ``(rows, cols)`` values rising from ``lo`` (top left) to ``hi`` (bottom right)."""
    t = np.arange(rows * cols, dtype=np.float64).reshape(rows, cols) / max(rows * cols - 1, 1)
    return np.rint(lo + t * (hi - lo)).astype(np.int64)


def _set_pixels(ds: Dataset, stored: np.ndarray, dtype: str) -> None:
    ds.PixelData = np.ascontiguousarray(stored.astype(dtype)).tobytes()


def monochrome1(rows: int = 64, cols: int = 80) -> Dataset:
    """CR-like MONOCHROME1, 12 of 16 bits, stored values 0..4095, slope 1, intercept 0."""
    ds = _base(CR_IMAGE, rows, cols, bits_stored=12, photometric="MONOCHROME1", modality="CR")
    _set_pixels(ds, ramp(rows, cols, 0, 4095), "<u2")
    ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    return ds


def ct_slice(rows: int = 64, cols: int = 64) -> Dataset:
    """CT, unsigned 12 of 16 bits, intercept -1024: HU = stored - 1024, from -1024 to 2000."""
    ds = _base(CT_IMAGE, rows, cols, bits_stored=12, modality="CT")
    _set_pixels(ds, ramp(rows, cols, 0, 3024), "<u2")
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "-1024", "HU"
    ds.WindowCenter, ds.WindowWidth = ["40", "-600"], ["400", "1500"]
    ds.WindowCenterWidthExplanation = ["SOFT", "LUNG"]
    ds.PixelSpacing = ["0.5", "0.5"]
    return ds


def enhanced_ct(frames: int = 4, rows: int = 32, cols: int = 40) -> Dataset:
    """Enhanced CT whose frames hold the same HU image under different per-frame rescales.

    Frame k (0-based) has slope ``k + 1`` and intercept ``-1000 - 120 k`` in its Pixel Value
    Transformation Sequence and stored values ``(12 j + 120 k) / (k + 1)`` (integers), so every
    frame encodes HU = 12 j - 1000 with j = ramp(0 .. 166); the top-level Rescale
    Slope/Intercept are deliberately absent. Frame VOI LUT gives frame k the window
    (40 + 10 k, 400). A reader that ignores per-frame values shows frames that differ.
    """
    ds = _base(ENHANCED_CT, rows, cols, bits_stored=16, modality="CT")
    ds.NumberOfFrames = frames
    j = ramp(rows, cols, 0, 166)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = ["0.7", "0.7"]
    measures.SliceThickness = "1"
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame, stored_frames = [], []
    for k in range(frames):
        stored_frames.append((12 * j + 120 * k) // (k + 1))
        item = Dataset()
        pvt = Dataset()
        pvt.RescaleSlope = str(k + 1)
        pvt.RescaleIntercept = str(-1000 - 120 * k)
        pvt.RescaleType = "HU"
        item.PixelValueTransformationSequence = Sequence([pvt])
        voi = Dataset()
        voi.WindowCenter = str(40 + 10 * k)
        voi.WindowWidth = "400"
        item.FrameVOILUTSequence = Sequence([voi])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    _set_pixels(ds, np.stack(stored_frames), "<u2")
    return ds


def enhanced_ct_hu(ds: Dataset) -> np.ndarray:
    """The HU image every frame of :func:`enhanced_ct` encodes, from its construction rule."""
    return 12 * ramp(int(ds.Rows), int(ds.Columns), 0, 166) - 1000


def with_overlays(rows: int = 48, cols: int = 64) -> Dataset:
    """MR-like image with two graphic overlays: a full-size frame in 6000, a box in 6002.

    6000 covers the whole image and sets its border; 6002 is an 8x10 filled block whose
    Overlay Origin is (row 5, column 7), 1-based.
    """
    ds = _base(MR_IMAGE, rows, cols, bits_stored=12, modality="MR")
    _set_pixels(ds, ramp(rows, cols, 0, 1000), "<u2")
    ds.WindowCenter, ds.WindowWidth = "500", "1000"
    border = np.zeros((rows, cols), dtype=bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    _add_overlay(ds, 0x6000, border, origin=(1, 1))
    _add_overlay(ds, 0x6002, np.ones((8, 10), dtype=bool), origin=(5, 7))
    return ds


def _pack(bits: np.ndarray) -> bytes:
    flat = np.asarray(bits, dtype=np.uint8).ravel()
    packed = np.packbits(flat, bitorder="little").tobytes()
    return packed + b"\x00" if len(packed) % 2 else packed


def _add_overlay(
    ds: Dataset,
    group: int,
    bitmap: np.ndarray,
    origin: tuple[int, int],
    frames: int | None = None,
    image_frame_origin: int | None = None,
) -> None:
    rows, cols = bitmap.shape[-2:]
    ds.add_new((group, 0x0010), "US", rows)
    ds.add_new((group, 0x0011), "US", cols)
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", list(origin))
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    if frames is not None:
        ds.add_new((group, 0x0015), "IS", frames)
        ds.add_new((group, 0x0051), "US", image_frame_origin or 1)
    ds.add_new((group, 0x3000), "OW", _pack(bitmap))


def multiframe_overlay(frames: int = 3, rows: int = 16, cols: int = 16) -> Dataset:
    """A 3-frame image with a 2-frame overlay starting at image frame 2 (C.9.2.1.2).

    Overlay frame 0 (image frame 2) sets row 3; overlay frame 1 (image frame 3) sets column 4.
    """
    ds = _base(SecondaryCaptureImageStorage, rows, cols, bits_allocated=8, modality="OT")
    ds.NumberOfFrames = frames
    _set_pixels(ds, np.zeros((frames, rows, cols)), "u1")
    bitmaps = np.zeros((2, rows, cols), dtype=bool)
    bitmaps[0, 3, :] = True
    bitmaps[1, :, 4] = True
    _add_overlay(ds, 0x6000, bitmaps, origin=(1, 1), frames=2, image_frame_origin=2)
    return ds


def bits_stored_12_with_junk(rows: int = 32, cols: int = 32) -> Dataset:
    """12 of 16 bits with bit 15 set in every other pixel (e.g. an old embedded overlay).

    The displayable values are the low 12 bits: ramp 0..4095.
    """
    ds = _base(MR_IMAGE, rows, cols, bits_stored=12, modality="MR")
    values = ramp(rows, cols, 0, 4095)
    junk = np.zeros_like(values)
    junk.ravel()[::2] = 0x8000
    _set_pixels(ds, values | junk, "<u2")
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    return ds


def signed16(rows: int = 32, cols: int = 32, bits_stored: int = 16) -> Dataset:
    """Signed values from -2000 to 2000 (two's complement in ``bits_stored`` bits)."""
    ds = _base(MR_IMAGE, rows, cols, bits_stored=bits_stored, signed=True, modality="MR")
    values = ramp(rows, cols, -2000, 2000)
    mask = (1 << bits_stored) - 1
    _set_pixels(ds, values & mask, "<u2")
    ds.WindowCenter, ds.WindowWidth = "0", "4000"
    return ds


def unsigned32(rows: int = 16, cols: int = 16, signed: bool = False) -> Dataset:
    """32-bit values ramping over ±3e8 (signed) or 0..3e9, with slope 1e-6."""
    ds = _base(CT_IMAGE, rows, cols, bits_allocated=32, signed=signed, modality="OT")
    lo, hi = (-300_000_000, 300_000_000) if signed else (0, 3_000_000_000)
    _set_pixels(ds, ramp(rows, cols, lo, hi), "<i4" if signed else "<u4")
    ds.RescaleSlope, ds.RescaleIntercept = "1e-6", "0"
    return ds


def rgb(rows: int = 8, cols: int = 12, planar: int = 0) -> Dataset:
    """8-bit RGB, R = column * 20, G = row * 30, B = 255 - R, in planar configuration 0 or 1."""
    ds = _base(
        SecondaryCaptureImageStorage, rows, cols, bits_allocated=8, samples=3, photometric="RGB"
    )
    ds.PlanarConfiguration = planar
    image = rgb_expected(rows, cols)
    data = image.transpose(2, 0, 1) if planar else image
    _set_pixels(ds, data, "u1")
    return ds


def rgb_expected(rows: int, cols: int) -> np.ndarray:
    """The (rows, cols, 3) uint8 image :func:`rgb` encodes."""
    yy, xx = np.mgrid[0:rows, 0:cols]
    r = np.clip(xx * 20, 0, 255)
    return np.stack([r, np.clip(yy * 30, 0, 255), 255 - r], axis=-1).astype(np.uint8)


def voi_lut_sequence(rows: int = 16, cols: int = 64) -> Dataset:
    """Stored 0..1023 (10 of 16 bits) with a 12-bit VOI LUT of 512 entries from value 256.

    LUT entry i = 8 i (so input v in 256..767 maps to 8 (v - 256)); no window attributes.
    """
    ds = _base(MR_IMAGE, rows, cols, bits_stored=10, modality="MR")
    _set_pixels(ds, ramp(rows, cols, 0, 1023), "<u2")
    item = Dataset()
    item.LUTDescriptor = [512, 256, 12]
    item.LUTData = [8 * i for i in range(512)]
    item["LUTData"].VR = "US"
    item.LUTExplanation = "TEST LUT"
    ds.VOILUTSequence = Sequence([item])
    return ds


def modality_lut_sequence(rows: int = 16, cols: int = 64) -> Dataset:
    """Stored 0..255 mapped by a Modality LUT with entry i = 4 i + 100 (16-bit output)."""
    ds = _base(MR_IMAGE, rows, cols, bits_allocated=16, bits_stored=8, modality="OT")
    _set_pixels(ds, ramp(rows, cols, 0, 255), "<u2")
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.LUTData = [4 * i + 100 for i in range(256)]
    item["LUTData"].VR = "US"
    item.ModalityLUTType = "OD"
    ds.ModalityLUTSequence = Sequence([item])
    ds.WindowCenter, ds.WindowWidth = "610", "1020"
    return ds


def sigmoid(rows: int = 16, cols: int = 64) -> Dataset:
    """Stored 0..1000 with window 500/200 and VOI LUT Function SIGMOID."""
    ds = _base(MR_IMAGE, rows, cols, bits_stored=12, modality="MR")
    _set_pixels(ds, ramp(rows, cols, 0, 1000), "<u2")
    ds.WindowCenter, ds.WindowWidth = "500", "200"
    ds.VOILUTFunction = "SIGMOID"
    return ds


def many_frames(frames: int = 200, rows: int = 128, cols: int = 128) -> Dataset:
    """A multi-frame 16-bit object whose frame k is filled with the value k."""
    ds = _base(SecondaryCaptureImageStorage, rows, cols, bits_stored=16, modality="OT")
    ds.NumberOfFrames = frames
    data = np.repeat(np.arange(frames, dtype="<u2"), rows * cols)
    ds.PixelData = data.tobytes()
    return ds


def save(ds: Dataset, path: Path) -> Path:
    """Write ``ds`` as a DICOM file (preamble, file meta) at ``path``; return the path."""
    ds.save_as(path, enforce_file_format=True)
    return path


# --------------------------------------------------------------------------------------------
# Volumes whose answer is known: a sphere in patient space


def sphere_hu(
    points: np.ndarray, centre: tuple[float, float, float], radius: float, inside: int, outside: int
) -> np.ndarray:
    """HU at patient points ``(..., 3)``: ``inside`` within ``radius`` mm of ``centre``."""
    distance = np.linalg.norm(np.asarray(points) - np.asarray(centre), axis=-1)
    return np.where(distance <= radius, inside, outside).astype(np.int64)


def _pixel_centres(
    position: np.ndarray, row: np.ndarray, col: np.ndarray, rows: int, cols: int, spacing: float
) -> np.ndarray:
    """Patient position of each pixel centre of a slice (PS3.3 C.7.6.2.1.1), ``(rows, cols, 3)``."""
    ii, jj = np.mgrid[0:rows, 0:cols]
    return position + jj[..., None] * spacing * row + ii[..., None] * spacing * col


def sphere_series(
    *,
    rows: int = 48,
    cols: int = 48,
    slices: int = 40,
    spacing: float = 1.0,
    slice_spacing: float = 1.0,
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
    radius: float = 12.0,
    inside: int = 100,
    outside: int = -1000,
    tilt_degrees: float = 0.0,
    missing: tuple[int, ...] = (),
    rescales: tuple[tuple[float, float], ...] = ((1.0, -1024.0),),
    orientation: str = "axial",
    values: np.ndarray | None = None,
) -> list[Dataset]:
    """A CT series imaging a sphere: each pixel is ``inside`` HU when its centre is within
    ``radius`` of ``centre``, else ``outside`` (no partial volume, so ROI means are exact).

    The volume is centred on the origin. ``tilt_degrees`` tilts the slices about the x axis the
    way a gantry does (column cosines (0, cos t, sin t), positions stepping along z only), so
    the stack is sheared. Slices whose index is in ``missing`` are left out. Slice k uses
    Rescale Slope/Intercept ``rescales[k % len(rescales)]``, stored values chosen so the HU
    stay the same. ``orientation`` "sagittal" acquires sagittal slices stepping along x.
    """
    t = np.radians(tilt_degrees)
    if orientation == "axial":
        row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, np.cos(t), np.sin(t)])
        # The table moves along z, tilted or not: with a tilt the slices are dz·cos t apart.
        step = np.array([0.0, 0.0, slice_spacing])
    elif orientation == "sagittal":
        row, col = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])
        step = np.array([1.0, 0.0, 0.0]) * slice_spacing
    else:
        raise ValueError(f"orientation {orientation!r} is not axial or sagittal")
    start = (
        -row * spacing * (cols - 1) / 2.0
        - col * spacing * (rows - 1) / 2.0
        - step * (slices - 1) / 2.0
    )
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    out = []
    for k in range(slices):
        if k in missing:
            continue
        position = start + k * step
        if values is not None:
            hu = np.asarray(values[k], dtype=np.int64)
        else:
            centres = _pixel_centres(position, row, col, rows, cols, spacing)
            hu = sphere_hu(centres, centre, radius, inside, outside)
        slope, intercept = rescales[k % len(rescales)]
        stored = np.rint((hu - intercept) / slope).astype(np.int64)
        assert np.array_equal(stored * slope + intercept, hu), "pick exact rescales"
        ds = _base(
            CT_IMAGE, rows, cols, bits_stored=16, signed=bool(stored.min() < 0), modality="CT"
        )
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID = frame_of_reference
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *col)]
        ds.PixelSpacing = [f"{spacing:g}", f"{spacing:g}"]
        ds.SliceThickness = "5"  # deliberately wrong: spacing must come from positions
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{slope:g}", f"{intercept:g}", "HU"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        _set_pixels(ds, stored, "<i2" if ds.PixelRepresentation else "<u2")
        out.append(ds)
    return out


def enhanced_sphere(
    *,
    rows: int = 40,
    cols: int = 40,
    frames: int = 30,
    spacing: float = 1.0,
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
    radius: float = 10.0,
    inside: int = 100,
    outside: int = -1000,
) -> Dataset:
    """An Enhanced CT of a sphere (as :func:`sphere_series`): per-frame Plane Position, shared
    Plane Orientation and Pixel Measures, and a per-frame Pixel Value Transformation whose
    slope alternates 1 and 2 (stored values follow), frames stored in reverse z order."""
    row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    start = np.array([-(cols - 1) / 2.0, -(rows - 1) / 2.0, -(frames - 1) / 2.0]) * spacing
    ds = _base(ENHANCED_CT, rows, cols, bits_stored=16, signed=True, modality="CT")
    ds.FrameOfReferenceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = frames
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [f"{spacing:g}", f"{spacing:g}"]
    measures.SliceThickness = f"{spacing:g}"
    orientation = Dataset()
    orientation.ImageOrientationPatient = [f"{v:g}" for v in (*row, *col)]
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = "40", "400"
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame, stored_frames = [], []
    for n in range(frames):
        k = frames - 1 - n  # frames in reverse order of position
        position = start + np.array([0.0, 0.0, k * spacing])
        hu = sphere_hu(
            _pixel_centres(position, row, col, rows, cols, spacing), centre, radius, inside, outside
        )
        slope = 1 + n % 2
        intercept = -1000 if slope == 1 else -2000
        stored_frames.append((hu - intercept) // slope)
        assert np.array_equal(stored_frames[-1] * slope + intercept, hu)
        item = Dataset()
        plane = Dataset()
        plane.ImagePositionPatient = [f"{v:g}" for v in position]
        item.PlanePositionSequence = Sequence([plane])
        pvt = Dataset()
        pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = str(slope), str(intercept), "HU"
        item.PixelValueTransformationSequence = Sequence([pvt])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    _set_pixels(ds, np.stack(stored_frames), "<i2")
    return ds


# ---- test cards for the real-terminal tests ----------------------------------------------------

CARD_WINDOW = (40.0, 400.0)
"""(center, width) in HU of the test cards: display value d comes from HU = 400 d / 255 - 160."""


def card_display(rows: int, cols: int, index: int) -> np.ndarray:
    """Display values (uint8, 40..250, never black) of test card ``index``.

    A horizontal and a vertical ramp (smooth: a resampled card stays close to the source), a
    fine texture of period 3 px (an image shown at the wrong scale or offset differs from it),
    a disc and an 8-px checkerboard that move with ``index`` (every slice differs from the
    previous one, so a leftover of an earlier frame can be told apart from the current one).
    """
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    value = 48 + 150 * xx / max(cols - 1, 1) + 40 * yy / max(rows - 1, 1)
    value += 5 * ((xx // 1 + yy // 1) % 3 - 1)
    cy, cx = rows * (0.3 + 0.08 * (index % 5)), cols * (0.35 + 0.06 * (index % 7))
    value = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < (min(rows, cols) * 0.12) ** 2, 235, value)
    top, left = int(rows * 0.62), int(cols * (0.1 + 0.05 * (index % 6)))
    size = max(16, min(rows, cols) // 6)
    block = (slice(top, top + size), slice(left, left + size))
    checker = ((yy[block] // 8 + xx[block] // 8) % 2) * 150 + 60
    value[block] = checker
    return np.clip(np.rint(value), 40, 250).astype(np.uint8)


def write_card_series(dest: Path, *, slices: int = 6, rows: int = 384, cols: int = 384) -> Path:
    """A CT series of test cards (:func:`card_display` under :data:`CARD_WINDOW`) with position
    and orientation, so the viewer shows its edge labels; returns the folder."""
    from tuiviewer.dicom.datagen import write_ct_series

    paths = write_ct_series(
        dest, slices=slices, rows=rows, cols=cols, seed=9, noise_hu=0.0, shuffle_names=False
    )
    center, width = CARD_WINDOW
    for index, path in enumerate(paths):
        ds = pydicom_read(path)
        hu = card_display(rows, cols, index).astype(np.float64) * width / 255 + center - width / 2
        stored = np.rint(hu + 1024).astype("<u2")
        ds.PixelData = stored.tobytes()
        ds.WindowCenter, ds.WindowWidth = f"{center:g}", f"{width:g}"
        ds.save_as(path, enforce_file_format=True)
    return dest


def ultrasound_rgb(rows: int = 240, cols: int = 320) -> Dataset:
    """An RGB ultrasound frame: a near-grey image of 201 grey levels (R, G, B within 2 of each
    other, as scanners write them) with a red/blue colour-Doppler patch."""
    ds = _base("1.2.840.10008.5.1.4.1.1.6.1", rows, cols, bits_allocated=8, samples=3,
               photometric="RGB", modality="US")  # fmt: skip
    ds.PlanarConfiguration = 0
    yy, xx = np.mgrid[0:rows, 0:cols]
    grey = 30 + (200 * (xx + yy) / (rows + cols - 2))  # 30..230: 201 levels
    image = np.repeat(np.rint(grey)[..., None], 3, axis=2)
    image[..., 0] += (xx % 3 == 0) * 2  # the tint of a real scanner's grey
    image[..., 2] += (yy % 4 == 0) * 1
    patch = (slice(rows // 4, rows // 4 + rows // 5), slice(cols // 2, cols // 2 + cols // 4))
    ramp_x = np.broadcast_to(
        np.linspace(0, 1, patch[1].stop - patch[1].start)[None, :],
        (patch[0].stop - patch[0].start, patch[1].stop - patch[1].start),
    )
    image[patch] = np.stack([200 * ramp_x + 40, 30 + 0 * ramp_x, 220 * (1 - ramp_x) + 20], axis=-1)
    _set_pixels(ds, np.clip(image, 0, 255), "u1")
    return ds


def pydicom_read(path: Path) -> Dataset:
    import pydicom

    return pydicom.dcmread(path)
