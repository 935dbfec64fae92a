"""``tuiviewer report new`` (Markdown to a Basic Text SR, optionally sent) and ``report show``.

``tuiviewer.cli`` parses the arguments and calls these with its streams. Exit codes: 0 success,
1 failure (unreadable study or report, write or send failed), 2 usage error (``--final``
without ``--reader``, or without an organization when neither ``--organization``, the
configuration's ``[ui] organization`` nor the study's institution names one; unknown node).
Errors are one line on ``stderr``, without PHI.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TextIO

from pydicom.errors import InvalidDicomError

from tuiviewer.commands.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from tuiviewer.config.nodes import Node, resolve_node
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import ConfigError, DicomReadError, TuiviewerError
from tuiviewer.reports.companions import write_companions
from tuiviewer.reports.measurements import MeasurementStore
from tuiviewer.reports.model import ReportStatus, sign
from tuiviewer.reports.sr.build import write_sr
from tuiviewer.reports.sr.context import study_context_from_paths
from tuiviewer.reports.templates import choose_template, load_templates
from tuiviewer.reports.text import from_markdown, sr_to_text

__all__ = ["run", "run_report_new", "run_report_show"]


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer report new|show`` command line."""
    if args.report_command == "new":
        return run_report_new(
            args.study,
            args.from_md,
            args.output,
            final=args.final,
            reader=args.reader,
            send=args.send,
            organization=args.organization or configured_organization(args.config),
            stdout=stdout,
            stderr=stderr,
        )
    return run_report_show(args.file, stdout=stdout, stderr=stderr)


def configured_organization(config_path: Path | None) -> str | None:
    """``[ui] organization`` of the configuration, or None (unset or unreadable: the command
    then falls back to the study's institution, and says so if there is none)."""
    from tuiviewer.config.settings import load_config

    try:
        return load_config(config_path).ui.organization.strip() or None
    except ConfigError:
        return None


def run_report_new(
    study: Path,
    from_md: Path,
    out: Path,
    *,
    final: bool,
    reader: str | None,
    send: str | None,
    stdout: TextIO,
    stderr: TextIO,
    organization: str | None = None,
    nodes: dict[str, Node] | None = None,
    measurements: MeasurementStore | None = None,
) -> int:
    """``tuiviewer report new STUDY --from REPORT.md -o OUT.dcm [--final --reader NAME]
    [--send NODE]``: build a Basic Text SR from Markdown about the study in STUDY (a folder
    or a file of the study), write it, and optionally C-STORE it to NODE.

    The document title comes from the template that fits the study's modality and body part,
    unless the Markdown names one (``# CT Chest Report``). The study's saved measurements
    (``measurements``, default the data dir's) go beside it as a TID 1500 measurement report
    and key images as a key object selection (:func:`write_companions`), sent with it.
    """
    name = "tuiviewer report new"
    if final and not (reader or "").strip():
        print(f"{name}: --final needs --reader NAME (the radiologist who signs).", file=stderr)
        return EXIT_USAGE
    node: Node | None = None
    if send is not None:
        try:
            node = resolve_node(send, nodes)
        except ConfigError as exc:
            print(f"{name}: {exc.message}", file=stderr)
            return EXIT_USAGE
    try:
        markdown = Path(from_md).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"{name}: cannot read {str(from_md)!r}: {reason}.", file=stderr)
        return EXIT_FAILURE
    try:
        report = from_markdown(markdown)
        context = study_context_from_paths(Path(study))
        if not markdown.lstrip().startswith("# "):
            template = choose_template(load_templates(), context.modality, context.body_part)
            report = dataclasses.replace(report, title=template.title)
        if final:
            assert reader is not None
            if not (organization or context.institution_name).strip():
                # Verifying Organization is Type 1: say what to give rather than invent one.
                print(
                    f"{name}: --final needs --organization NAME (or [ui] organization in "
                    "config.toml): the study names no institution, and a signed report must "
                    "say whose it is.",
                    file=stderr,
                )
                return EXIT_USAGE
            report = sign(report, reader, organization=organization)
        elif reader:
            report = dataclasses.replace(report, reader=reader.strip(), organization=organization)
        written = write_sr(report, context, Path(out))
        companions = write_companions(
            report, context, Path(out), (measurements or MeasurementStore()).load(context.study_uid)
        )
    except TuiviewerError as exc:
        print(f"{name}: {exc.message}", file=stderr)
        return EXIT_FAILURE
    status = "final" if report.status is ReportStatus.FINAL else "preliminary"
    count = len(report.written_sections())
    print(
        f"Wrote {str(written)!r}: {report.title.meaning}, {status}, {count} "
        f"section{'s' if count != 1 else ''}.",
        file=stdout,
    )
    for path, what in companions:
        print(f"Wrote {str(path)!r}: {what}.", file=stdout)
    if node is None:
        return EXIT_OK
    from tuiviewer.net.transport import send_files

    try:
        result = send_files(node, [written, *(path for path, _ in companions)])
    except TuiviewerError as exc:
        print(f"{name}: the report was written but not sent: {exc.message}", file=stderr)
        return EXIT_FAILURE
    if result.failed or not result.sent:
        reason = result.failed[0][1] if result.failed else "nothing was sent"
        print(f"{name}: the report was written but not sent: {reason}", file=stderr)
        return EXIT_FAILURE
    print(f"Sent to {node.describe()}.", file=stdout)
    return EXIT_OK


def run_report_show(path: Path, *, stdout: TextIO, stderr: TextIO) -> int:
    """``tuiviewer report show SR.dcm``: print any SR document as indented text."""
    name = "tuiviewer report show"
    try:
        ds = read_dicom(Path(path))
    except DicomReadError as exc:
        print(f"{name}: {exc.message}", file=stderr)
        return EXIT_FAILURE
    except (OSError, InvalidDicomError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"{name}: cannot read {str(path)!r}: {reason}.", file=stderr)
        return EXIT_FAILURE
    try:
        text = sr_to_text(ds)
    except TuiviewerError as exc:
        print(f"{name}: {str(path)!r}: {exc.message}", file=stderr)
        return EXIT_FAILURE
    stdout.write(text)
    return EXIT_OK
