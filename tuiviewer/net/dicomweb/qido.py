"""QIDO-RS searches (PS3.18 10.6) that answer like C-FIND: the same queries, the same datasets.

A :class:`~tuiviewer.net.find.FindQuery` becomes matching parameters and ``includefield``
return keys (from :func:`~tuiviewer.net.find.build_identifier`, so both transports ask for the
same attributes); study-, series- and instance-level searches use the resource paths
(``/studies/{uid}/series``), and results come page by page (``limit``/``offset``), each match
yielded as a pydicom ``Dataset`` the moment its page arrives, so ``to_row`` and every caller of
:func:`tuiviewer.net.find.find` work unchanged. QIDO-RS has no patient level: patient rows are
gathered from the studies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from tuiviewer.config.dicomweb import DicomWebNode
from tuiviewer.dicom.rows import QueryLevel
from tuiviewer.net.dicomweb.client import WebSession
from tuiviewer.net.echo import EchoResult
from tuiviewer.net.find import FindQuery, QueryModel, build_identifier
from tuiviewer.net.trace import AssociationTrace

_NOT_QUERY_KEYS = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet"})
_UNIQUE_KEY = {
    QueryLevel.STUDY: "StudyInstanceUID",
    QueryLevel.SERIES: "SeriesInstanceUID",
    QueryLevel.IMAGE: "SOPInstanceUID",
}
_WILDCARD = set("*?\\,")


def _no_bulk(tag: str, vr: str, uri: str) -> bytes:
    """QIDO answers carry no bulk data worth fetching; a BulkDataURI becomes an empty value."""
    return b""


def to_dataset(item: dict[str, Any]) -> Dataset:
    """One DICOM JSON object (PS3.18 F.2) as a dataset; malformed elements are dropped."""
    try:
        return Dataset.from_json(item, bulk_data_uri_handler=_no_bulk)
    except (ValueError, TypeError, KeyError):
        good = {}
        for tag, element in item.items():
            try:
                Dataset.from_json({tag: element}, bulk_data_uri_handler=_no_bulk)
            except (ValueError, TypeError, KeyError):
                continue
            good[tag] = element
        return Dataset.from_json(good, bulk_data_uri_handler=_no_bulk)


def _parameters(identifier: Dataset) -> tuple[dict[str, str], list[str]]:
    """Matching parameters and ``includefield`` keywords from a C-FIND identifier."""
    filters: dict[str, str] = {}
    fields: list[str] = []
    for element in identifier:
        keyword = element.keyword
        if not keyword or keyword in _NOT_QUERY_KEYS:
            continue
        value = element.value
        text = "" if value is None else str(value)
        if text:
            if dictionary_VR(element.tag) == "UI":
                text = text.replace("\\", ",")  # UID list matching (PS3.18 8.3.4.1)
            filters[keyword] = text
        else:
            fields.append(keyword)
    return filters, fields


def _exact_uid(filters: dict[str, str], keyword: str) -> str | None:
    value = filters.get(keyword, "")
    return value if value and not (_WILDCARD & set(value)) else None


def search(
    node: DicomWebNode,
    query: FindQuery,
    *,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
) -> Iterator[Dataset]:
    """Yield each match of ``query`` on ``node``, one QIDO-RS page after the other.

    Paging stops at a short page, and also at a page that brings nothing new (a server that
    ignores ``offset``). ``cancel`` is checked between matches and pages.

    Raises:
        ValueError: the query is invalid (see :func:`~tuiviewer.net.find.build_identifier`).
        NetError: the typed errors of :mod:`tuiviewer.net.errors` and
            :mod:`tuiviewer.net.dicomweb.errors`.
    """
    level = QueryLevel(query.level)
    if level is QueryLevel.PATIENT:
        yield from _patients(node, query, cancel=cancel, trace=trace)
        return
    identifier = build_identifier(query, QueryModel.STUDY_ROOT)
    filters, fields = _parameters(identifier)
    with WebSession(node, trace) as web:
        study = _exact_uid(filters, "StudyInstanceUID")
        series = _exact_uid(filters, "SeriesInstanceUID")
        kwargs: dict[str, Any] = {}
        method: Callable[..., list[dict[str, Any]]]
        if level is QueryLevel.STUDY:
            method = web.client.search_for_studies
        elif level is QueryLevel.SERIES:
            method = web.client.search_for_series
            if study:
                kwargs["study_instance_uid"] = study
                filters.pop("StudyInstanceUID")
        else:
            method = web.client.search_for_instances
            if study:
                kwargs["study_instance_uid"] = study
                filters.pop("StudyInstanceUID")
                if series:
                    kwargs["series_instance_uid"] = series
                    filters.pop("SeriesInstanceUID")
        fuzzy = True if node.fuzzy_matching else None
        key = _UNIQUE_KEY[level]
        seen: set[str] = set()
        offset = 0
        what = f"the {level.value.lower()}-level QIDO-RS search"
        while not (cancel is not None and cancel.is_set()):
            with web.errors(what):
                page = method(
                    fuzzymatching=fuzzy,
                    limit=node.page_size,
                    offset=offset,
                    fields=fields or None,
                    search_filters=filters or None,
                    **kwargs,
                )
            fresh = 0
            for item in page:
                ds = to_dataset(item)
                uid = str(ds.get(key, "") or "")
                if uid and uid in seen:
                    continue
                if uid:
                    seen.add(uid)
                fresh += 1
                yield ds
                if cancel is not None and cancel.is_set():
                    return
            if len(page) < node.page_size or fresh == 0:
                return
            offset += len(page)


def _patients(
    node: DicomWebNode,
    query: FindQuery,
    *,
    cancel: threading.Event | None,
    trace: AssociationTrace | None,
) -> Iterator[Dataset]:
    """Patient-level matches from a study-level search (QIDO-RS has no patient resource)."""
    from dataclasses import replace

    patients: dict[str, Dataset] = {}
    counts: dict[str, int] = {}
    for study in search(node, replace(query, level=QueryLevel.STUDY), cancel=cancel, trace=trace):
        pid = str(study.get("PatientID", "") or "")
        if pid not in patients:
            ds = Dataset()
            for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
                if keyword in study:
                    ds[keyword] = study[keyword]
            patients[pid] = ds
        counts[pid] = counts.get(pid, 0) + 1
    for pid, ds in patients.items():
        ds.NumberOfPatientRelatedStudies = counts[pid]
        yield ds


def echo(node: DicomWebNode, *, trace: AssociationTrace | None = None) -> EchoResult:
    """The DICOMweb "ping": a study-level QIDO-RS search for at most one study.

    Raises:
        NetError: the server cannot be reached, refuses us, or answers with a failure.
    """
    trace = trace if trace is not None else AssociationTrace()
    with WebSession(node, trace) as web:
        started = time.perf_counter()
        with web.errors("the QIDO-RS echo"):
            web.client.search_for_studies(limit=1)
        rtt_ms = (time.perf_counter() - started) * 1000
        record = web.last_record()
        status = record.status if record is not None and record.status is not None else 200
    return EchoResult(node=node, status=status, rtt_ms=rtt_ms, trace=trace)
