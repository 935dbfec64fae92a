"""The study tree: patient → study → series → stack → instance, updated while a scan runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.index import (
    PatientNode,
    SeriesNode,
    StackNode,
    StudyIndex,
    StudyNode,
    slice_location,
)
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.safetext import clean

NodeKind = Literal["patient", "study", "series", "stack", "instance"]


@dataclass(frozen=True)
class StudyRef:
    """What a study-tree node stands for."""

    kind: NodeKind
    key: str
    record: InstanceRecord | None = None


def _date(text: str) -> str:
    return display_date(text) or "no date"


def patient_label(patient: PatientNode) -> Text:
    label = Text(clean(patient.name) or "(no name)", style="bold")
    label.append(f"  {clean(patient.patient_id) or '(no ID)'}", style="dim")
    if patient.birth_date:
        label.append(f"  b. {clean(_date(patient.birth_date))}", style="dim")
    if patient.sex:
        label.append(f"  {clean(patient.sex)}", style="dim")
    return label


def study_label(study: StudyNode) -> Text:
    label = Text(clean(_date(study.date)))
    label.append(f"  {clean('/'.join(study.modalities)) or '?'}", style="cyan")
    label.append(f"  {clean(study.description) or '(no description)'}")
    if study.accession:
        label.append(f"  acc {clean(study.accession)}", style="dim")
    return label


def series_label(series: SeriesNode) -> Text:
    number = "?" if series.number is None else str(series.number)
    label = Text(f"#{number} ", style="bold")
    label.append(clean(series.modality) or "?", style="cyan")
    label.append(f"  {clean(series.description) or '(no description)'}")
    count = series.instance_count
    label.append(f"  {count} {'instance' if count == 1 else 'instances'}", style="dim")
    return label


def instance_label(record: InstanceRecord) -> Text:
    number = "?" if record.instance_number is None else str(record.instance_number)
    label = Text(f"{number:>4} ", style="bold")
    location = slice_location(record)
    if location is not None:
        label.append(f"{location:8.1f} mm ", style="dim")
    if record.frames > 1:
        label.append(f"{record.frames} frames ", style="cyan")
    label.append(clean(record.path.name))
    if record.problem:
        label.append(" ⚠", style="bold yellow")
    return label


class StudyTree(Tree[StudyRef]):
    """Patients, studies, series and stacks; instances are added when a stack is expanded."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("Studies", id=id)
        self.show_root = False
        self.guide_depth = 2
        self._patients: dict[str, TreeNode[StudyRef]] = {}
        self._studies: dict[str, TreeNode[StudyRef]] = {}
        self._series: dict[str, TreeNode[StudyRef]] = {}
        self._stacks: dict[str, StackNode] = {}

    def update_from(self, index: StudyIndex, changed: set[str]) -> None:
        """Add or refresh the nodes of the studies in ``changed``, keeping expansion state.

        A node is added where the index orders it (patients by name, studies newest first,
        series by number), not after the ones already there: the tree of a folder reads the
        same however the scan's batches fell (a study's first series is what `v` opens)."""
        patients = index.patients()
        anchors = _anchors([p.key for p in patients], self._patients, self.root)
        for patient in patients:
            studies = [s for s in patient.studies if s.uid in changed]
            if not studies:
                continue
            pnode = self._patients.get(patient.key)
            if pnode is None:
                pnode = self.root.add(
                    patient_label(patient),
                    data=StudyRef("patient", patient.key),
                    before=anchors[patient.key],
                    expand=True,
                )
                self._patients[patient.key] = pnode
            else:
                pnode.set_label(patient_label(patient))
            for study in studies:
                self._update_study(pnode, study, [s.uid for s in patient.studies])

    def _update_study(self, pnode: TreeNode[StudyRef], study: StudyNode, order: list[str]) -> None:
        snode = self._studies.get(study.uid)
        if snode is None:
            before = _anchors(order, self._studies, pnode)[study.uid]
            snode = pnode.add(
                study_label(study), data=StudyRef("study", study.uid), before=before, expand=True
            )
            self._studies[study.uid] = snode
        else:
            snode.set_label(study_label(study))
        keys = [f"{study.uid}|{series.uid}" for series in study.series]
        anchors = _anchors(keys, self._series, snode)
        for series, key in zip(study.series, keys, strict=True):
            # A series UID is only unique within its study here: damaged files (or files
            # without one) can share it across studies, and none may hide another's instances.
            senode = self._series.get(key)
            if senode is None:
                senode = snode.add(
                    series_label(series), data=StudyRef("series", series.uid), before=anchors[key]
                )
                self._series[key] = senode
            else:
                senode.set_label(series_label(series))
            self._update_stacks(senode, series, key)

    def _update_stacks(self, senode: TreeNode[StudyRef], series: SeriesNode, key: str) -> None:
        expanded = {child.data.key for child in senode.children if child.data and child.is_expanded}
        new_keys = [f"{key}|{stack.key}" for stack in series.stacks]
        senode.remove_children()
        for stack, key in zip(series.stacks, new_keys, strict=True):
            self._stacks[key] = stack
            label = Text(clean(stack.label), style="italic")
            node = senode.add(label, data=StudyRef("stack", key))
            if key in expanded:
                self._fill_stack(node)
                node.expand()

    def _fill_stack(self, node: TreeNode[StudyRef]) -> None:
        if node.data is None or node.children:
            return
        stack = self._stacks.get(node.data.key)
        if stack is None:
            return
        for record in stack.instances:
            node.add_leaf(
                instance_label(record),
                data=StudyRef("instance", record.sop_instance_uid, record),
            )

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded[StudyRef]) -> None:
        node = event.node
        if node.data is not None and node.data.kind == "stack":
            self._fill_stack(node)
        elif node.data is not None and node.data.kind == "series" and len(node.children) == 1:
            # A series with a single stack: open the stack too, one key press less.
            only = node.children[0]
            self._fill_stack(only)
            only.expand()

    def stack_records(self, node: TreeNode[StudyRef]) -> list[InstanceRecord]:
        """Every instance below ``node``, in display order."""
        data = node.data
        if data is None:
            return []
        if data.kind == "instance" and data.record is not None:
            return [data.record]
        if data.kind == "stack":
            stack = self._stacks.get(data.key)
            return list(stack.instances) if stack else []
        records: list[InstanceRecord] = []
        for child in node.children:
            records.extend(self.stack_records(child))
        return records

    def paths_below(self, node: TreeNode[StudyRef]) -> list[Path]:
        return [record.path for record in self.stack_records(node)]

    def first_instance_node(self) -> TreeNode[StudyRef] | None:
        """Open the first stack and return its first instance node, if any."""
        for pnode in self.root.children:
            for snode in pnode.children:
                for senode in snode.children:
                    for stack in senode.children:
                        self._fill_stack(stack)
                        stack.expand()
                        senode.expand()
                        if stack.children:
                            return stack.children[0]
        return None

    def stack_to_view(self) -> ViewRequest | None:
        """What the viewer opens for the node under the cursor: its stack (a study's or
        series' first), the instance to start on, the study's other stacks and the patient's
        other studies (priors). None when the cursor is on nothing viewable."""
        # As for W: a v typed before the cursor is placed is for the first study on show.
        node: TreeNode[StudyRef] | None = self.cursor_node or self.first_instance_node()
        leaves = ("stack", "instance")
        while node is not None and node.data is not None and node.data.kind not in leaves:
            node = node.children[0] if node.children else None
        if node is None or node.data is None:
            return None
        record = node.data.record if node.data.kind == "instance" else None
        stack = node.parent if record is not None else node
        if stack is None:
            return None
        records = self.stack_records(stack)
        start = next((i for i, r in enumerate(records) if r is record), 0)
        study: TreeNode[StudyRef] | None = stack
        while study is not None and study.data is not None and study.data.kind != "study":
            study = study.parent
        stacks: list[list[InstanceRecord]] = []
        priors: list[list[InstanceRecord]] = []
        if study is not None:
            stacks = [self.stack_records(s) for series in study.children for s in series.children]
            patient = study.parent
            for other in patient.children if patient is not None else []:
                if other is not study:
                    priors += [self.stack_records(s) for se in other.children for s in se.children]
        return ViewRequest(records, start, stacks, priors)

    def study_record(self) -> InstanceRecord | None:
        """The first instance of what is under the cursor (right after a scan, before the
        cursor is placed: of the first study)."""
        node: TreeNode[StudyRef] | None = self.cursor_node or self.first_instance_node()
        records = self.stack_records(node) if node is not None else []
        return records[0] if records else None


def _anchors(
    order: list[str], present: dict[str, TreeNode[StudyRef]], parent: TreeNode[StudyRef]
) -> dict[str, TreeNode[StudyRef] | None]:
    """For each key of ``order``, the node already under ``parent`` that a new node of that key
    goes before: the next one in ``order`` that is there (None: it goes last). Adding the new
    ones in ``order`` keeps every sibling in order (one pass, however many there are)."""
    anchors: dict[str, TreeNode[StudyRef] | None] = {}
    after: TreeNode[StudyRef] | None = None
    for key in reversed(order):
        anchors[key] = after
        node = present.get(key)
        if node is not None and node.parent is parent:
            after = node
    return anchors


@dataclass(frozen=True)
class ViewRequest:
    """A stack for the viewer, with its study's other stacks and the patient's priors."""

    records: list[InstanceRecord]
    start: int
    stacks: list[list[InstanceRecord]]
    priors: list[list[InstanceRecord]]
