"""What the report editor needs done below the screen: the study and its earlier reports,
the check before signing or sending, sending, and exporting as text.

The editor runs these in thread workers; they raise typed errors and never touch the UI.
Reports on the PACS are found in :mod:`tuiviewer.services.reporting`; the documents are built
and read in :mod:`tuiviewer.reports.sr`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import SaveError, TuiviewerError
from tuiviewer.files import write_private
from tuiviewer.locations import private_dirs
from tuiviewer.net.errors import NetError
from tuiviewer.net.transport import retrieve_study, send_files
from tuiviewer.reports.companions import companion_documents
from tuiviewer.reports.measurements import Measurement
from tuiviewer.reports.model import Report, ReportStatus
from tuiviewer.reports.sr.build import build_sr
from tuiviewer.reports.sr.context import StudyContext, study_context_from_paths
from tuiviewer.reports.sr.read import is_report, report_status
from tuiviewer.reports.text import sr_to_text, to_markdown, to_text
from tuiviewer.services.reporting import find_reports_on_pacs, study_context_from_pacs
from tuiviewer.services.worklist import patient_studies
from tuiviewer.store import LocalStore


@dataclass(frozen=True)
class ReportSource:
    """Where the study of a report is: a local folder or file, and/or the PACS it came from."""

    study_uid: str
    path: Path | None = None
    node: Node | None = None


@dataclass(frozen=True)
class ReportContext:
    """What the report editor shows beside the text: the study, and the reports already written."""

    context: StudyContext
    priors: list[str] = field(default_factory=list)
    """Reports found on disk beside the study, as text (newest first)."""
    remote: list[str] = field(default_factory=list)
    """Reports of this study and of the patient's other studies on the PACS, as text."""
    finals: list[Path] = field(default_factory=list)
    """Final (signed) reports of this very study on disk: a new one is an addendum."""


def local_reports(folder: Path, limit: int = 20) -> list[tuple[Path, Dataset]]:
    """Reports (SR documents with a report title) found in ``folder``, newest first."""
    found: list[tuple[Path, Dataset]] = []
    for path in sorted(folder.rglob("*")):
        if len(found) >= limit or not path.is_file():
            continue
        try:
            # Reports carry no pixel data: do not read the images' (a CT study is hundreds of MB).
            ds = read_dicom(path, force=True, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, AttributeError, EOFError, TuiviewerError):
            continue
        if "ContentSequence" in ds and is_report(ds):
            found.append((path, ds))
    found.sort(
        key=lambda item: str(item[1].get("ContentDate", "")) + str(item[1].get("ContentTime", "")),
        reverse=True,
    )
    return found


def report_context(source: ReportSource, store: LocalStore) -> ReportContext:
    """The study of ``source`` and the reports already written about it and its patient.

    Raises:
        TuiviewerError: the study could not be read from disk or asked of the PACS.
    """
    if source.path is not None:
        context = study_context_from_paths(source.path)
    elif source.node is not None:
        context = study_context_from_pacs(source.node, source.study_uid)
    else:
        raise TuiviewerError("The study is neither on disk nor on a known PACS.")
    priors: list[str] = []
    finals: list[Path] = []
    if source.path is not None:
        folder = source.path if source.path.is_dir() else source.path.parent
        for path, ds in local_reports(folder):
            priors.append(sr_to_text(ds))
            same_study = str(ds.get("StudyInstanceUID", "")) == source.study_uid
            if same_study and report_status(ds) is ReportStatus.FINAL:
                finals.append(path)
    remote: list[str] = []
    if source.node is not None:
        remote = pacs_report_texts(source.node, context, store)
    return ReportContext(context, priors, remote, finals)


def pacs_report_texts(node: Node, context: StudyContext, store: LocalStore) -> list[str]:
    """Reports on the PACS of this study and of the patient's other studies, as text.

    They are retrieved (C-GET of the SR instances only) into the local store to be read; what
    could not be asked or retrieved is a line starting with ⚠.
    """
    try:
        others = patient_studies(node, context.patient_id, exclude=context.study_uid)
    except TuiviewerError:
        others = []
    studies = [context.study_uid] + [row.uid for row in others[:5]]
    texts: list[str] = []
    for study_uid in studies:
        try:
            found = find_reports_on_pacs(node, study_uid)
        except TuiviewerError as exc:
            texts.append(f"⚠ {exc.message}")
            continue
        if not found:
            continue
        series = sorted({r.series_uid for r in found})
        try:
            result = retrieve_study(node, study_uid, store=store, series_uids=series)
        except TuiviewerError as exc:
            texts.append(f"⚠ {len(found)} report(s) on the PACS not retrieved: {exc.message}")
            continue
        for path in result.received:
            try:
                ds = read_dicom(path)
            except (InvalidDicomError, OSError, TuiviewerError):
                continue
            if is_report(ds):
                texts.append(sr_to_text(ds))
    return texts


def confirmation_text(question: str, ctx: StudyContext, node: Node | None) -> str:
    """Before signing or sending: the question, whose study it is, and the final reports the
    PACS already holds of it (asked here; a PACS that cannot answer is said, not fatal)."""
    lines = [
        question,
        "",
        f"Patient:   {ctx.patient_name.replace('^', ' ')}",
        f"ID:        {ctx.patient_id}",
        f"Accession: {ctx.accession_number or '—'}",
    ]
    if node is not None:
        try:
            finals = [
                r
                for r in find_reports_on_pacs(node, ctx.study_uid)
                if r.verification_flag.upper() == "VERIFIED"
            ]
        except TuiviewerError as exc:
            finals = []
            lines.append(f"⚠ Could not ask the PACS for existing reports: {exc.message}")
        if finals:
            dates = ", ".join(display_date(r.content_date) or "no date" for r in finals)
            lines.append(
                f"⚠ The PACS already holds {len(finals)} final report(s) of this study "
                f"({dates}), possibly by someone else."
            )
    return "\n".join(lines)


def write_report_documents(
    store: LocalStore,
    report: Report,
    ctx: StudyContext,
    measurements: Sequence[Measurement] = (),
) -> tuple[Dataset, Path, list[Path]]:
    """Write ``report`` as an SR into ``store``, and beside it in the study its companions: the
    measurements (TID 1500) and the key images (KO), when it has any.

    Returns:
        The SR, its path, and the paths of the companions written.

    Raises:
        ReportError: the report, a measurement or a key image cannot be encoded.
        StoreError: a document could not be written (those written before it stay).
    """
    ds = build_sr(report, ctx)
    path = store.write_dataset(ds)
    companions = [
        store.write_dataset(document)
        for _, document, _ in companion_documents(report, ctx, measurements)
    ]
    return ds, path, companions


def send_report(node: Node, path: Path, companions: Sequence[Path] = ()) -> None:
    """C-STORE the SR at ``path`` to ``node``, with its measurement and key image documents.

    Raises:
        NetError: the association failed, or the PACS refused a document.
    """
    result = send_files(node, [path, *companions])
    if result.failed:
        raise NetError(f"Not sent: {result.failed[0][1]}")


def export_report(base: Path, report: Report, measurements: Sequence[Measurement] = ()) -> Path:
    """Write ``report`` as ``base``.txt and ``base``.md (files 0600, the folder 0700); the text
    lists the study's ``measurements``.

    Returns:
        ``base`` without a suffix.

    Raises:
        SaveError: the folder or a file could not be written (the message names it).
    """
    base = base.with_suffix("")
    try:
        private_dirs(base.parent)  # the export folder too: 0700, like the rest
        texts = ((".txt", to_text(report, measurements)), (".md", to_markdown(report)))
        for suffix, text in texts:
            write_private(base.with_suffix(suffix), text)
    except OSError as exc:
        raise SaveError(f"Could not write {base}: {exc.strerror or exc}.") from exc
    return base
