"""Key images as a DICOM Key Object Selection document (KO), which every PACS viewer shows.

A TID 2000 report lists its key images itself, but PACS viewers (and the "key images" button of
most of them) look for a Key Object Selection Document (PS3.3 A.35.4) in the study: a KO series
whose document, built with TID 2010, is titled ``113000`` "Of Interest" (CID 7010) and holds
one IMAGE item per key image, each listed again in the Current Requested Procedure Evidence
Sequence, which in a KO lists every referenced instance, of any study (C.17.6.2). The document
is written beside the report and sent with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from tuiviewer.reports.model import Code, KeyImage, ReportError
from tuiviewer.reports.sr import LANGUAGE
from tuiviewer.reports.sr.build import (
    _code_item,
    _content,
    _hierarchical,
    check_reference,
    document_base,
    image_item,
    language_code,
    with_file_meta,
)
from tuiviewer.reports.sr.context import StudyContext

__all__ = ["KEY_OBJECT_SELECTION", "OF_INTEREST", "build_key_object_selection"]

KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"
OF_INTEREST = Code(codes.DCM.OfInterest.value, "DCM", codes.DCM.OfInterest.meaning)
"""CID 7010 "Key Object Selection Document Title": the reader's own selection."""
_DESCRIPTION = Code(
    codes.DCM.KeyObjectDescription.value, "DCM", codes.DCM.KeyObjectDescription.meaning
)


def build_key_object_selection(
    keys: Sequence[KeyImage],
    study: StudyContext,
    *,
    description: str = "",
    language: str = "en",
    now: dt.datetime | None = None,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_number: int | None = None,
) -> Dataset:
    """The KO document (with File Meta) selecting ``keys`` "Of Interest".

    Args:
        description: the Key Object Description text (TID 2010), e.g. the impression.

    Raises:
        ReportError: no key image, or an invalid UID.
    """
    unique = list(dict.fromkeys(keys))
    if not unique:
        raise ReportError("There is no key image to select.")
    ds = document_base(
        study,
        sop_class_uid=KEY_OBJECT_SELECTION,
        series_description="Key images",
        now=now,
        series_uid=series_uid,
        sop_instance_uid=sop_instance_uid,
        modality="KO",
        series_number=series_number if series_number is not None else study.next_series_number + 2,
    )
    # Key Object Document Module (C.17.6.2): every referenced instance, of any study.
    ds.CurrentRequestedProcedureEvidenceSequence = _hierarchical(
        check_reference(k, "The key image") for k in unique
    )
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code_item(OF_INTEREST)]
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = [template]
    content: list[Dataset] = []
    language_item = _content("HAS CONCEPT MOD", "CODE", LANGUAGE)
    language_item.ConceptCodeSequence = [_code_item(language_code(language))]
    content.append(language_item)
    if description.strip():
        text = _content("CONTAINS", "TEXT", _DESCRIPTION)
        text.TextValue = description.strip().replace("\n", "\r\n")[:1024]
        content.append(text)
    content.extend(image_item("CONTAINS", key) for key in unique)
    ds.ContentSequence = content
    return with_file_meta(ds)
