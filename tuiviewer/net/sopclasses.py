"""Which storage presentation contexts to propose when a PACS sends us instances.

With C-GET the PACS sends each instance over *our* association, and it can only use the
presentation contexts we proposed: an instance whose SOP class (or transfer syntax) we did not
offer is silently lost as a failed sub-operation. An association carries at most 128 contexts
(PS3.8 9.3.2.2), so a naive "common storage classes" list cannot cover the ~170 storage SOP
classes. This module builds the contexts for the classes a study really holds (learnt from an
image-level C-FIND), and a broad, ranked fallback for PACS that do not answer that query.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AllStoragePresentationContexts

#: Uncompressed syntaxes every storage context offers, Explicit VR first: it keeps VRs of
#: private elements, which Implicit VR loses.
UNCOMPRESSED: tuple[str, ...] = (str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian))

#: Compressed syntaxes offered when the PACS does not say which ones a study uses, most
#: common first. Each gets its own context so the PACS can send every file as stored instead
#: of transcoding it (one context = one transfer syntax once accepted, PS3.8 7.1.1.13).
COMMON_COMPRESSED: tuple[str, ...] = (
    str(JPEG2000Lossless),
    str(JPEGLosslessSV1),
    str(JPEGBaseline8Bit),
    str(JPEG2000),
    str(RLELossless),
    str(JPEGLSLossless),
    str(JPEGExtended12Bit),
    str(JPEGLossless),
    str(JPEGLSNearLossless),
    str(HTJ2KLossless),
)

DEFLATED = str(DeflatedExplicitVRLittleEndian)
"""Offered only when asked (``deflate=True``): a deflated data set can inflate 1000:1, so it
is inflated within the reading limits on arrival (:mod:`tuiviewer.net.move`)."""

#: Storage SOP classes seen in everyday radiology, radiotherapy and reporting, most common
#: first; the broad fallback starts with these before the rest of the standard's list.
_COMMON_CLASSES: tuple[str, ...] = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray For Processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography For Processing
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis Image
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic Image
    "1.2.840.10008.5.1.4.1.1.12.2",  # X-Ray Radiofluoroscopic Image
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine Image
    "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET Image
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT Plan
    "1.2.840.10008.5.1.4.1.1.481.8",  # RT Ion Plan
    "1.2.840.10008.5.1.4.1.1.481.4",  # RT Beams Treatment Record
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.35",  # Extensible SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection Document
    "1.2.840.10008.5.1.4.1.1.88.67",  # X-Ray Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.50",  # Mammography CAD SR
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.11.2",  # Color Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.104.2",  # Encapsulated CDA
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.66.1",  # Spatial Registration
    "1.2.840.10008.5.1.4.1.1.66.3",  # Deformable Spatial Registration
    "1.2.840.10008.5.1.4.1.1.30",  # Parametric Map
    "1.2.840.10008.5.1.4.1.1.9.1.1",  # 12-lead ECG Waveform
    "1.2.840.10008.5.1.4.1.1.9.1.2",  # General ECG Waveform
    "1.2.840.10008.5.1.4.1.1.77.1.1",  # VL Endoscopic Image
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic Image
    "1.2.840.10008.5.1.4.1.1.77.1.5.1",  # Ophthalmic Photography 8 Bit
    "1.2.840.10008.5.1.4.1.1.77.1.5.4",  # Ophthalmic Tomography Image
    "1.2.840.10008.5.1.4.1.1.77.1.6",  # VL Whole Slide Microscopy Image
    "1.2.840.10008.5.1.4.1.1.66",  # Raw Data
)

#: Words in the names of storage classes that the standard retired long ago or that never
#: leave the modality; they come last in the fallback, so they are the first to be cut.
_RARE_WORDS = ("Standalone", "Hardcopy", "Stored Print", "Trial", "Curve", "Overlay")


def _ranked_storage_classes() -> tuple[str, ...]:
    known = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]
    rest = [uid for uid in dict.fromkeys(known) if uid not in _COMMON_CLASSES]
    usual = [uid for uid in rest if not any(w in UID(uid).name for w in _RARE_WORDS)]
    rare = [uid for uid in rest if uid not in usual]
    return tuple(dict.fromkeys([*_COMMON_CLASSES, *usual, *rare]))


#: Every storage SOP class pynetdicom knows, common ones first.
RANKED_STORAGE_CLASSES: tuple[str, ...] = _ranked_storage_classes()

ContextList = list[tuple[str, list[str]]]


def is_uncompressed(transfer_syntax: str) -> bool:
    """Native (not encapsulated, not deflated) little or big endian encoding."""
    return str(transfer_syntax) in (*UNCOMPRESSED, str(ExplicitVRBigEndian))


def storage_contexts(
    classes: Mapping[str, Collection[str]], budget: int, *, deflate: bool = False
) -> ContextList:
    """Storage contexts for the SOP classes a study holds, within ``budget`` contexts.

    Args:
        classes: SOP Class UID -> transfer syntaxes the PACS says its instances use (empty
            when it does not say, the usual case).
        budget: how many contexts may be proposed (128 minus the Q/R context).
        deflate: also offer Deflated Explicit VR Little Endian (the PACS's own or as a guess);
            otherwise a PACS holding a deflated instance sends it inflated, or fails it.

    Returns:
        ``(sop_class, [transfer_syntax, ...])`` pairs: for every class one context with the
        uncompressed syntaxes, then one context per compressed syntax, the known ones first,
        then :data:`COMMON_COMPRESSED` handed out round-robin over the classes until the
        budget is spent, so no class goes without its uncompressed context.

    Raises:
        ValueError: more classes than ``budget``.
    """
    if len(classes) > budget:
        raise ValueError(
            f"The study holds {len(classes)} SOP classes, more than the {budget} presentation "
            "contexts one association can carry."
        )
    contexts: ContextList = [(uid, list(UNCOMPRESSED)) for uid in classes]
    offered: set[tuple[str, str]] = {(uid, ts) for uid in classes for ts in UNCOMPRESSED}

    def add(uid: str, ts: str) -> None:
        if len(contexts) < budget and (uid, ts) not in offered:
            offered.add((uid, ts))
            contexts.append((uid, [ts]))

    for uid, syntaxes in classes.items():
        for ts in syntaxes:
            if ts and ts not in UNCOMPRESSED and (deflate or str(ts) != DEFLATED):
                add(uid, str(ts))
    # Only guess compressed syntaxes for classes whose syntaxes the PACS did not tell us.
    unknown = [uid for uid, syntaxes in classes.items() if not any(syntaxes)]
    for ts in (*COMMON_COMPRESSED, *((DEFLATED,) if deflate else ())):
        for uid in unknown:
            add(uid, ts)
    return contexts


def broad_storage_contexts(budget: int) -> ContextList:
    """Uncompressed contexts for the ``budget`` most common storage SOP classes.

    The fallback when the PACS will not say which classes a study holds. Compressed syntaxes
    are left out on purpose: offered in the same context, the PACS could pick a lossy one and
    transcode uncompressed images into it; offered separately, they would halve the classes.
    """
    return [(uid, list(UNCOMPRESSED)) for uid in RANKED_STORAGE_CLASSES[:budget]]


def scp_roles(classes: Iterable[str]) -> list[tuple[str, bool, bool]]:
    """SCP/SCU role selection items (PS3.7 D.3.3.4) that let the PACS send us ``classes``."""
    return [(uid, False, True) for uid in dict.fromkeys(classes)]


def distinct(contexts: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """The SOP classes of ``contexts``, in order, each once."""
    return list(dict.fromkeys(uid for uid, _ in contexts))
