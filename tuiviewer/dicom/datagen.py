"""Synthetic but realistic DICOM studies for tests, benchmarks and the demo.

There is no internet on CI and real patient data must never enter the repository, so every
study tuiviewer is exercised on is written here with pydicom: valid file meta, Explicit VR Little
Endian, proper UIDs, the patient/study/series modules, the Image Plane module and a CT phantom
with plausible Hounsfield units. The same ``seed`` always gives the same UIDs and pixels, so a
benchmark or a demo can be reproduced; different seeds never share a UID.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import random
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

Orientation = Literal["axial", "sagittal", "coronal"]

CRImageStorage = UID("1.2.840.10008.5.1.4.1.1.1")
"""Computed Radiography Image Storage (PS3.4 B.5)."""

#: Row and column direction cosines (PS3.3 C.7.6.2.1.1) in the patient coordinate system
#: (LPS: x to the patient's left, y posterior, z head).
ORIENTATIONS: dict[str, tuple[float, float, float, float, float, float]] = {
    "axial": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "sagittal": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
    "coronal": (1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
}

_HU_AIR = -1000.0
_HU_LUNG = -800.0
_HU_SOFT_TISSUE = 40.0
_HU_BONE = 700.0
_RESCALE_INTERCEPT = -1024.0
_IMPLEMENTATION_VERSION = "TUIVIEWER_DG1"


def _uid(seed: int, *parts: object) -> str:
    """A UID derived only from the seed and a role, so runs are reproducible."""
    return str(generate_uid(entropy_srcs=["tuiviewer-datagen", str(seed), *map(str, parts)]))


def phantom_hu(
    rows: int, cols: int, *, z: float = 0.0, rng: np.random.Generator, noise_hu: float = 10.0
) -> np.ndarray:
    """A body-like slice in Hounsfield units (float32, shape ``(rows, cols)``).

    Air around an elliptical body of soft tissue with a bone ring near its edge and two lungs
    inside; the body narrows with ``|z|`` so consecutive slices differ and ordering mistakes
    show on screen.
    """
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = (rows - 1) / 2.0, (cols - 1) / 2.0
    scale = 1.0 - min(abs(z) / 400.0, 0.4)
    ry, rx = 0.38 * rows * scale, 0.46 * cols * scale
    body = ((yy - cy) / max(ry, 1.0)) ** 2 + ((xx - cx) / max(rx, 1.0)) ** 2
    image = np.full((rows, cols), _HU_AIR, dtype=np.float32)
    image[body <= 1.0] = _HU_SOFT_TISSUE
    image[(body > 0.78) & (body <= 0.9)] = _HU_BONE
    for side in (-1.0, 1.0):
        lung = ((yy - cy) / max(0.55 * ry, 1.0)) ** 2 + (
            (xx - (cx + side * 0.42 * rx)) / max(0.3 * rx, 1.0)
        ) ** 2
        image[lung <= 1.0] = _HU_LUNG
    if noise_hu > 0:
        image += rng.normal(0.0, noise_hu, size=image.shape).astype(np.float32)
    return image


def _stored_values(hu: np.ndarray) -> bytes:
    """HU → unsigned 12-bit stored values under RescaleIntercept -1024 (the common CT layout)."""
    stored = np.clip(np.rint(hu - _RESCALE_INTERCEPT), 0, 4095).astype("<u2")
    return stored.tobytes()


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION
    return meta


def _base_dataset(
    *,
    seed: int,
    sop_class: str,
    modality: str,
    patient_name: str,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    series_number: int,
    series_description: str,
    rows: int,
    cols: int,
) -> Dataset:
    """Everything shared by the instances of one series (copied per instance)."""
    rng = random.Random(f"{seed}:{patient_id}:{study_uid}")
    study_day = datetime.date(2020, 1, 1) + datetime.timedelta(days=rng.randrange(0, 1500))
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.StudyDate = study_day.strftime("%Y%m%d")
    ds.SeriesDate = ds.StudyDate
    ds.ContentDate = ds.StudyDate
    ds.StudyTime = f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"
    ds.SeriesTime = ds.StudyTime
    ds.AccessionNumber = f"ACC{rng.randrange(10**6):06d}"
    ds.Modality = modality
    ds.Manufacturer = "tuiviewer datagen"
    ds.InstitutionName = "Synthetic Hospital"
    ds.ReferringPhysicianName = "Referrer^Demo"
    ds.StudyDescription = "Synthetic study"
    ds.SeriesDescription = series_description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = f"19{rng.randrange(30, 99)}0{rng.randrange(1, 10)}1{rng.randrange(10)}"
    ds.PatientSex = rng.choice(["F", "M", "O"])
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.SliceThickness = "2.5"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = str(rng.randrange(1, 10000))
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = _uid(seed, "for", study_uid)
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [f"{350.0 / cols:.6g}", f"{350.0 / rows:.6g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = f"{_RESCALE_INTERCEPT:g}"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    if modality == "CT":
        ds.KVP = "120"
    return ds


def _position(orientation: Orientation, offset_mm: float, rows: int, cols: int) -> list[float]:
    """Top-left corner of a slice ``offset_mm`` along the slice normal, centred on the origin."""
    o = ORIENTATIONS[orientation]
    row_dir, col_dir = np.array(o[:3]), np.array(o[3:])
    normal = np.cross(row_dir, col_dir)
    corner = -row_dir * 175.0 - col_dir * 175.0 + normal * offset_mm
    return [round(float(v), 4) for v in corner]


def _instance(
    base: Dataset,
    *,
    seed: int,
    role: str,
    index: int,
    instance_number: int,
    orientation: Orientation,
    offset_mm: float,
    rng: np.random.Generator,
    noise_hu: float,
) -> Dataset:
    ds = copy.deepcopy(base)  # Dataset.copy() is shallow: element objects would be shared
    sop_uid = _uid(seed, "sop", base.SeriesInstanceUID, role, index)
    ds.SOPInstanceUID = sop_uid
    ds.file_meta = _file_meta(base.SOPClassUID, sop_uid)
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = _position(orientation, offset_mm, base.Rows, base.Columns)
    ds.ImageOrientationPatient = [f"{v:g}" for v in ORIENTATIONS[orientation]]
    ds.SliceLocation = f"{offset_mm:g}"
    ds.PixelData = _stored_values(
        phantom_hu(base.Rows, base.Columns, z=offset_mm, rng=rng, noise_hu=noise_hu)
    )
    return ds


def _file_name(ds: Dataset, shuffle_names: bool, seed: int) -> str:
    if shuffle_names:
        # A hash of the UID: stable per seed, unrelated to slice order.
        digest = hashlib.sha256(f"{seed}:{ds.SOPInstanceUID}".encode()).hexdigest()
        return f"{digest[:16]}.dcm"
    return f"IM{int(ds.InstanceNumber):05d}.dcm"


def _save(ds: Dataset, dest: Path, name: str) -> Path:
    path = dest / name
    ds.save_as(path, enforce_file_format=True)
    return path


def write_ct_series(
    dest: Path,
    *,
    slices: int,
    rows: int = 64,
    cols: int = 64,
    seed: int = 0,
    patient_name: str = "Demo^Patient",
    patient_id: str = "DEMO001",
    study_uid: str | None = None,
    series_uid: str | None = None,
    orientation: Orientation = "axial",
    shuffle_names: bool = True,
    noise_hu: float = 10.0,
) -> list[Path]:
    """Write one CT series of ``slices`` parallel slices 2.5 mm apart into ``dest``.

    Parameters:
        dest: folder to write into (created if missing).
        slices: number of images; instance ``i`` (1-based) lies at ``(i-1)*2.5`` mm along the
            slice normal, so InstanceNumber and position agree.
        rows, cols: matrix size; 16×16 keeps tests fast, 512×512 is realistic.
        seed: same seed → same UIDs, dates and noise; different seeds never share a UID.
        study_uid, series_uid: reuse existing UIDs (e.g. several series in one study).
        orientation: plane of the slices (row/column cosines from :data:`ORIENTATIONS`).
        shuffle_names: random-looking hex names that do not reveal slice order, as PACS exports
            often have; otherwise ``IM00001.dcm`` … in instance order.
        noise_hu: standard deviation of the gaussian noise added to the phantom.

    Returns:
        The written paths in instance order (not file-name order).
    """
    if slices < 1:
        raise ValueError(f"A series needs at least one slice, got slices={slices!r}.")
    dest.mkdir(parents=True, exist_ok=True)
    study = study_uid or _uid(seed, "study", patient_id)
    series = series_uid or _uid(seed, "series", study, orientation)
    base = _base_dataset(
        seed=seed,
        sop_class=CTImageStorage,
        modality="CT",
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=study,
        series_uid=series,
        series_number=1 + seed % 1000,
        series_description=f"CT {orientation}",
        rows=rows,
        cols=cols,
    )
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(slices):
        ds = _instance(
            base,
            seed=seed,
            role=orientation,
            index=i,
            instance_number=i + 1,
            orientation=orientation,
            offset_mm=i * 2.5,
            rng=rng,
            noise_hu=noise_hu,
        )
        paths.append(_save(ds, dest, _file_name(ds, shuffle_names, seed)))
    return paths


def write_radiograph(
    dest: Path,
    *,
    seed: int = 0,
    rows: int = 512,
    cols: int = 512,
    patient_name: str = "Demo^Radiograph",
    patient_id: str = "DEMO002",
    study_uid: str | None = None,
) -> Path:
    """Write one chest radiograph (CR, PA view, 12-bit MONOCHROME2) into ``dest``.

    A projection of the CT phantom's body: two dark lung fields in a brighter thorax, ribs
    as faint bands, and noise; Imager Pixel Spacing 0.35 mm (a distance at the detector).
    """
    dest.mkdir(parents=True, exist_ok=True)
    study = study_uid or _uid(seed, "cr-study", patient_id)
    series = _uid(seed, "cr-series", study)
    base = _base_dataset(
        seed=seed,
        sop_class=CRImageStorage,
        modality="CR",
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=study,
        series_uid=series,
        series_number=1,
        series_description="Chest PA",
        rows=rows,
        cols=cols,
    )
    for keyword in (
        "SliceThickness", "RescaleIntercept", "RescaleSlope", "RescaleType", "PixelSpacing",
        "FrameOfReferenceUID", "PositionReferenceIndicator", "KVP",
    ):  # fmt: skip
        if keyword in base:
            delattr(base, keyword)
    base.ImageType = ["ORIGINAL", "PRIMARY"]
    base.ViewPosition = "PA"
    base.ImagerPixelSpacing = ["0.35", "0.35"]
    base.WindowCenter, base.WindowWidth = "2048", "4096"
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows * 0.52, (cols - 1) / 2.0
    thorax = ((yy - cy) / (0.45 * rows)) ** 2 + ((xx - cx) / (0.42 * cols)) ** 2
    image = np.full((rows, cols), 300.0, dtype=np.float32)
    image[thorax <= 1.0] = 2600.0
    for side in (-1.0, 1.0):
        lung = ((yy - cy) / (0.33 * rows)) ** 2 + (
            (xx - (cx + side * 0.2 * cols)) / (0.14 * cols)
        ) ** 2
        image[lung <= 1.0] = 1100.0
    ribs = (np.sin(yy / rows * 40.0) > 0.85) & (thorax <= 1.0)
    image[ribs] += 500.0
    image += rng.normal(0.0, 40.0, size=image.shape).astype(np.float32)
    ds = copy.deepcopy(base)
    ds.SOPInstanceUID = _uid(seed, "cr-sop", series)
    ds.file_meta = _file_meta(CRImageStorage, ds.SOPInstanceUID)
    ds.InstanceNumber = 1
    ds.PixelData = np.clip(np.rint(image), 0, 4095).astype("<u2").tobytes()
    return _save(ds, dest, f"CR{seed:05d}.dcm")


def write_mixed_series(dest: Path, *, seed: int = 0) -> dict[str, list[Path]]:
    """Write the awkward series a study browser must split into stacks.

    One CT SeriesInstanceUID holds a coronal localizer (ImageType LOCALIZER), an axial stack of
    5 (AcquisitionNumber 1) and a second pass of 4 axial slices over the same positions
    (AcquisitionNumber 2). One MR series in the same study holds 2 echoes (EchoNumbers 1, 2)
    × 3 slices at the same positions. File names are shuffled hex.

    Returns:
        ``{"localizer", "axial1", "axial2", "echo1", "echo2"}`` → paths, each list in
        ascending position along the slice normal.
    """
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study = _uid(seed, "mixed-study")
    ct_series = _uid(seed, "mixed-ct")
    common = dict(
        seed=seed,
        patient_name="Mixed^Series",
        patient_id=f"MIXED{seed:03d}",
        study_uid=study,
        rows=16,
        cols=16,
    )
    ct = _base_dataset(
        sop_class=CTImageStorage,
        modality="CT",
        series_uid=ct_series,
        series_number=2,
        series_description="CT chest with scout",
        **common,  # type: ignore[arg-type]
    )
    out: dict[str, list[Path]] = {k: [] for k in ("localizer", "axial1", "axial2")}

    def emit(base: Dataset, key: str, ds: Dataset) -> None:
        out[key].append(_save(ds, dest, _file_name(ds, True, seed)))

    scout = _instance(
        ct, seed=seed, role="loc", index=0, instance_number=1, orientation="coronal",
        offset_mm=0.0, rng=rng, noise_hu=5.0,
    )  # fmt: skip
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.AcquisitionNumber = 1
    del scout.RescaleType  # PS3.3 C.8.2.1: not "HU" on an ORIGINAL LOCALIZER
    emit(ct, "localizer", scout)
    number = 2
    for key, acquisition, count in (("axial1", 1, 5), ("axial2", 2, 4)):
        for i in range(count):
            ds = _instance(
                ct, seed=seed, role=key, index=i, instance_number=number,
                orientation="axial", offset_mm=i * 2.5, rng=rng, noise_hu=5.0,
            )  # fmt: skip
            ds.AcquisitionNumber = acquisition
            number += 1
            emit(ct, key, ds)

    mr = _base_dataset(
        sop_class=MRImageStorage,
        modality="MR",
        series_uid=_uid(seed, "mixed-mr"),
        series_number=3,
        series_description="MR dual echo",
        **common,  # type: ignore[arg-type]
    )
    for tag in ("RescaleIntercept", "RescaleSlope", "RescaleType"):
        delattr(mr, tag)
    mr.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    mr.ScanningSequence = "SE"
    mr.SequenceVariant = "NONE"
    mr.ScanOptions = ""
    mr.MRAcquisitionType = "2D"
    mr.RepetitionTime = "2000"
    mr.MagneticFieldStrength = "1.5"
    mr.EchoTrainLength = 1
    out["echo1"], out["echo2"] = [], []
    number = 1
    # Echoes interleaved in instance numbers, as scanners store them.
    for i in range(3):
        for echo in (1, 2):
            ds = _instance(
                mr, seed=seed, role=f"echo{echo}", index=i, instance_number=number,
                orientation="axial", offset_mm=i * 5.0, rng=rng, noise_hu=5.0,
            )  # fmt: skip
            ds.EchoNumbers = echo
            ds.EchoTime = f"{15 * echo}"
            number += 1
            emit(mr, f"echo{echo}", ds)
    return out


def write_many(
    dest: Path, *, count: int, studies: int = 4, rows: int = 8, cols: int = 8, seed: int = 0
) -> list[Path]:
    """Write ``count`` tiny CT files spread over nested folders, for scan benchmarks.

    Studies are shared round-robin by ``max(1, studies // 2)`` patients, each study holds 3
    series, and files go to ``dest/patNN/studyNN/seriesN/NNN/``. Every file carries the same
    noise-free phantom so 2,000 files take a few seconds.

    Returns:
        The written paths in writing order.
    """
    if count < 0 or studies < 1:
        raise ValueError(f"Need count >= 0 and studies >= 1, got count={count!r}, {studies=!r}.")
    patients = max(1, studies // 2)
    series_per_study = 3
    rng = np.random.default_rng(seed)
    pixels = _stored_values(phantom_hu(rows, cols, rng=rng, noise_hu=0.0))
    bases: list[Dataset] = []
    for s in range(studies):
        p = s % patients
        study = _uid(seed, "many-study", s)
        for k in range(series_per_study):
            base = _base_dataset(
                seed=seed,
                sop_class=CTImageStorage,
                modality="CT",
                patient_name=f"Many^Patient{p:02d}",
                patient_id=f"MANY{seed:03d}{p:03d}",
                study_uid=study,
                series_uid=_uid(seed, "many-series", s, k),
                series_number=k + 1,
                series_description=f"Series {k + 1}",
                rows=rows,
                cols=cols,
            )
            base.ImageOrientationPatient = [f"{v:g}" for v in ORIENTATIONS["axial"]]
            base.PixelData = pixels
            bases.append(base)
    folders: dict[int, Path] = {}
    counters = [0] * len(bases)
    paths: list[Path] = []
    for n in range(count):
        b = n % len(bases)
        base = bases[b]
        i = counters[b]
        counters[b] += 1
        ds = copy.deepcopy(base)  # Dataset.copy() is shallow: element objects would be shared
        sop_uid = _uid(seed, "many-sop", base.SeriesInstanceUID, i)
        ds.SOPInstanceUID = sop_uid
        ds.file_meta = _file_meta(CTImageStorage, sop_uid)
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = _position("axial", i * 2.5, rows, cols)
        s, k = divmod(b, series_per_study)
        folder_key = b * 1000 + i // 100
        folder = folders.get(folder_key)
        if folder is None:
            folder = (
                dest / f"pat{s % patients:02d}" / f"study{s:02d}" / f"series{k}" / f"{i // 100:03d}"
            )
            folder.mkdir(parents=True, exist_ok=True)
            folders[folder_key] = folder
        paths.append(_save(ds, folder, f"{i:05d}.dcm"))
    return paths
