"""Reports as text: plain text and Markdown to paste into a RIS or an e-mail, Markdown back into a
report, any SR document as indented readable text (for reading priors), and OSC 52 clipboard
copies that work over SSH.

Markdown input (``tuiviewer report new --from REPORT.md``): an optional ``# Title`` line (a CID
7000 title such as "CT Chest Report"), then ``## Heading`` lines naming sections
(case-insensitive, synonyms such as "Impressions", "History", "Conclusion" accepted, a trailing
colon ignored). Text under a heading belongs to that section, ``###`` sub-headings included.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence

from pydicom.dataset import Dataset
from pydicom.uid import UID

from tuiviewer.dicom.display import display_date
from tuiviewer.reports.measurements import Measurement, measurements_text
from tuiviewer.reports.model import (
    DIAGNOSTIC_IMAGING_REPORT,
    REPORT_TITLES,
    Code,
    Report,
    ReportError,
    ReportStatus,
    Section,
    SectionKind,
)

__all__ = ["from_markdown", "osc52", "sr_to_text", "to_markdown", "to_text"]

_HEADING = re.compile(r"^(#{1,2})\s+(.*?)(?:\s+#+)?\s*$")
_STATUS_LINE = re.compile(r"^\*(preliminary|final) report\b.*\*$", re.IGNORECASE)
_MAX_DEPTH = 50
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.\d{1,6})?$")
_DT = re.compile(r"^(\d{8})(\d{2,6}(?:\.\d{1,6})?)?([+-]\d{4})?$")


def _status_line(report: Report) -> str:
    if report.status is ReportStatus.FINAL:
        signer = report.reader or "unknown reader"
        when = f" on {report.signed_at:%Y-%m-%d %H:%M}" if report.signed_at else ""
        org = f" ({report.organization})" if report.organization else ""
        return f"Final report, signed by {signer}{org}{when}"
    return "Preliminary report, not signed"


def to_text(report: Report, measurements: Sequence[Measurement] = ()) -> str:
    """Plain text: the title, status line, then each non-empty section as an upper-case heading
    and its text, separated by blank lines; then the measurements, one line each; key images
    are counted at the end."""
    parts = [report.title.meaning.upper(), _status_line(report)]
    for section in report.written_sections():
        parts.append(f"{section.kind.title.upper()}\n{section.text}")
    if measurements:
        parts.append(f"MEASUREMENTS\n{measurements_text(measurements)}")
    if report.key_images:
        count = len(report.key_images)
        parts.append(f"Key images: {count}")
    return "\n\n".join(parts) + "\n"


def to_markdown(report: Report) -> str:
    """Markdown that :func:`from_markdown` reads back to the same title and sections."""
    parts = [f"# {report.title.meaning}", f"*{_status_line(report)}*"]
    for section in report.written_sections():
        parts.append(f"## {section.kind.title}\n\n{section.text}")
    return "\n\n".join(parts) + "\n"


def _title_code(name: str, line: int) -> Code:
    wanted = name.strip().lower()
    for code in REPORT_TITLES.values():
        if code.meaning.lower() == wanted:
            return code
    known = ", ".join(sorted(c.meaning for c in REPORT_TITLES.values()))
    raise ReportError(
        f"Line {line}: title {name!r} is not a known report title (CID 7000); use one of: {known}."
    )


def from_markdown(text: str, *, base: Report | None = None) -> Report:
    """Parse Markdown into a report (preliminary, no reader) whose sections are its ``##``
    headings, in the order written.

    Args:
        text: the Markdown.
        base: a report whose other fields (title, language, key images...) are kept.

    Raises:
        ReportError: an unknown heading (quoting it and its line), text before the first
            heading, a section given twice (Addendum excepted), or no text at all.
    """
    title: Code | None = None
    sections: list[tuple[SectionKind, list[str], int]] = []
    seen: dict[SectionKind, int] = {}
    fence = False
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fence = not fence
        match = None if fence else _HEADING.match(line)
        if match and match.group(1) == "#":
            if sections or title is not None:
                raise ReportError(
                    f"Line {number}: {stripped!r} is a second title; sections are '## Heading'."
                )
            title = _title_code(match.group(2), number)
            continue
        if match:
            name = match.group(2)
            kind = SectionKind.from_name(name)
            if kind is None:
                known = ", ".join(k.title for k in SectionKind)
                raise ReportError(
                    f"Line {number}: unknown section heading {name!r}; known sections: {known} "
                    "(synonyms such as 'Impressions' or 'History' work too)."
                )
            if kind in seen and kind is not SectionKind.ADDENDUM:
                raise ReportError(
                    f"Line {number}: section {kind.title!r} appears again (first at line "
                    f"{seen[kind]}); write it once."
                )
            seen.setdefault(kind, number)
            sections.append((kind, [], number))
            continue
        if not sections:
            if stripped and not _STATUS_LINE.match(stripped):
                raise ReportError(
                    f"Line {number}: text {stripped[:40]!r} comes before the first section "
                    "heading; start each section with '## Findings', '## Impression', ..."
                )
            continue
        sections[-1][1].append(line)
    built = tuple(Section(kind, "\n".join(lines).strip("\n")) for kind, lines, _ in sections)
    if not any(s.text.strip() for s in built):
        raise ReportError(
            "The report is empty: no section has any text (sections start with '## Findings', "
            "'## Impression', ...)."
        )
    start = base or Report(sections=())
    return Report(
        sections=tuple(s for s in built if s.text.strip()),
        key_images=start.key_images,
        status=ReportStatus.PRELIMINARY,
        reader=start.reader,
        organization=start.organization,
        predecessors=start.predecessors,
        title=title or (base.title if base is not None else DIAGNOSTIC_IMAGING_REPORT),
        language=start.language,
    )


# --- any SR as text ----------------------------------------------------------------------------


def display_time(text: str) -> str:
    """A TM value as ``08:43`` (``084306.231979`` → ``08:43``); anything else as it is."""
    match = _TM.match(text.strip())
    if match is None:
        return text
    return f"{match.group(1)}:{match.group(2) or '00'}"


def display_datetime(text: str) -> str:
    """A DT value as ``2026-12-01 08:43`` (``20261201084306.231979+0000``), with its UTC offset
    when it is not zero (``2026-12-01 08:43 UTC+0100``); anything else as it is."""
    match = _DT.match(text.strip())
    if match is None:
        return text
    date, time, offset = match.groups()
    shown = display_date(date)
    if time:
        shown += f" {display_time(time)}"
    if offset and offset[1:] != "0000":
        shown += f" UTC{offset}"
    return shown


def _code(seq: object) -> str:
    if not seq:
        return ""
    item = seq[0]  # type: ignore[index]
    meaning = str(item.get("CodeMeaning", "") or "")
    return meaning or str(item.get("CodeValue", "") or "?")


def _indent(text: str, prefix: str) -> str:
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return ("\n" + prefix).join(lines)


def _sop_name(uid: object) -> str:
    text = str(uid or "")
    try:
        name = UID(text).name
    except Exception:  # noqa: BLE001 - pydicom rejects malformed UIDs in several ways
        return text
    return name if name and name != text else text


def _reference(ref_seq: object) -> str:
    refs = []
    for ref in ref_seq or []:  # type: ignore[attr-defined]
        sop_class = _sop_name(ref.get("ReferencedSOPClassUID"))
        text = f"{sop_class} {ref.get('ReferencedSOPInstanceUID', '')}"
        frames = ref.get("ReferencedFrameNumber")
        if frames not in (None, ""):
            many = isinstance(frames, (list, tuple)) or type(frames).__name__ == "MultiValue"
            shown = ", ".join(str(f) for f in frames) if many else str(frames)
            text += f" frame{'s' if many else ''} {shown}"
        refs.append(text.strip())
    return "; ".join(refs) or "(no reference)"


def _value(item: Dataset, prefix: str) -> str:
    vtype = str(item.get("ValueType", ""))
    if vtype == "TEXT":
        return _indent(str(item.get("TextValue", "")), prefix)
    if vtype == "CODE":
        return _code(item.get("ConceptCodeSequence"))
    if vtype == "NUM":
        measured = item.get("MeasuredValueSequence") or []
        if not measured:
            return "(no value)"
        value = measured[0]
        unit = _code(value.get("MeasurementUnitsCodeSequence"))
        return f"{value.get('NumericValue', '')} {unit}".strip()
    if vtype == "PNAME":
        return str(item.get("PersonName", ""))
    if vtype == "DATE":
        return display_date(str(item.get("Date", "")))
    if vtype == "TIME":
        return display_time(str(item.get("Time", "")))
    if vtype == "DATETIME":
        return display_datetime(str(item.get("DateTime", "")))
    if vtype == "UIDREF":
        return str(item.get("UID", ""))
    if vtype in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        return _reference(item.get("ReferencedSOPSequence"))
    if vtype in ("SCOORD", "SCOORD3D"):
        data = item.get("GraphicData") or []
        return f"{item.get('GraphicType', '')} ({len(data)} values)"
    if vtype == "TCOORD":
        return str(item.get("TemporalRangeType", ""))
    return ""


def _items(items: Iterable[Dataset], depth: int, out: list[str]) -> None:
    prefix = "  " * depth
    for item in items:
        if depth > _MAX_DEPTH:
            out.append(f"{prefix}(nesting deeper than {_MAX_DEPTH} levels not shown)")
            return
        relation = str(item.get("RelationshipType", "") or "").lower()
        vtype = str(item.get("ValueType", "") or "")
        concept = _code(item.get("ConceptNameCodeSequence"))
        tag = f"({relation}) " if relation and relation != "contains" else ""
        if "ReferencedContentItemIdentifier" in item:
            target = ".".join(str(n) for n in item.ReferencedContentItemIdentifier)
            out.append(f"{prefix}{tag}see item {target}")
        elif vtype == "CONTAINER":
            out.append(f"{prefix}{tag}{concept or '(untitled container)'}")
        else:
            label = concept or vtype
            value = _value(item, prefix + "  ")
            out.append(f"{prefix}{tag}{label}: {value}" if value else f"{prefix}{tag}{label}")
        _items(item.get("ContentSequence") or [], depth + 1, out)


def sr_to_text(ds: Dataset) -> str:
    """Any SR document as indented text: a header (patient, study, flags, verifiers), then the
    content tree, one item a line (``Concept: value``), two spaces a level; relationships other
    than CONTAINS are shown in brackets.

    Raises:
        ReportError: ``ds`` is not an SR document (no root CONTAINER).
    """
    if str(ds.get("ValueType", "")) != "CONTAINER" and "ContentSequence" not in ds:
        raise ReportError(
            f"The dataset is not a structured report (SOP Class "
            f"{_sop_name(ds.get('SOPClassUID'))!r} has no content tree)."
        )
    lines = [_sop_name(ds.get("SOPClassUID")) or "Structured report", ""]

    def field(label: str, value: object) -> None:
        text = str(value or "").strip()
        if text:
            lines.append(f"{label:<20}: {text}")

    patient_id = str(ds.get("PatientID", "") or "")
    field("Patient", f"{ds.get('PatientName', '')}" + (f" ({patient_id})" if patient_id else ""))
    study_date = display_date(str(ds.get("StudyDate", "") or ""))
    field("Study", f"{study_date} {ds.get('StudyDescription', '') or ''}")
    field("Accession", ds.get("AccessionNumber"))
    field("Completion Flag", ds.get("CompletionFlag"))
    field("Verification Flag", ds.get("VerificationFlag"))
    field("Preliminary Flag", ds.get("PreliminaryFlag"))
    for observer in ds.get("VerifyingObserverSequence") or []:
        who = (
            observer.get("VerifyingObserverName", ""),
            observer.get("VerifyingOrganization", ""),
            display_datetime(str(observer.get("VerificationDateTime", "") or "")),
        )
        field("Verified by", ", ".join(str(part) for part in who if str(part or "").strip()))
    predecessors = ds.get("PredecessorDocumentsSequence") or []
    if predecessors:
        field("Predecessors", str(len(predecessors)))
    content_date = display_date(str(ds.get("ContentDate", "") or ""))
    content_time = display_time(str(ds.get("ContentTime", "") or ""))
    field("Content Date/Time", f"{content_date} {content_time}")
    lines.append("")
    lines.append(_code(ds.get("ConceptNameCodeSequence")) or "(untitled document)")
    _items(ds.get("ContentSequence") or [], 1, lines)
    return "\n".join(lines) + "\n"


# --- clipboard -----------------------------------------------------------------------------------


def osc52(text: str, *, tmux: bool = False) -> str:
    """The OSC 52 escape sequence that puts ``text`` on the local clipboard via the terminal.

    It travels through SSH like any output; the terminal (xterm, kitty, iTerm2, WezTerm,
    Windows Terminal...) sets its clipboard. ``tmux=True`` wraps it in tmux's DCS passthrough
    (``ESC P tmux; ... ESC \\``, with every ESC inside doubled) for tmux without
    ``set-clipboard on``. Some terminals cap the payload (about 100 kB).
    """
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    sequence = f"\x1b]52;c;{payload}\x07"
    if tmux:
        return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence
