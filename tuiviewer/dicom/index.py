"""The patient → study → series → stack hierarchy the study browser shows.

Scans deliver :class:`~tuiviewer.dicom.scanning.InstanceRecord` batches in file order; this
index groups them, splits series that mix several image stacks (a localizer, other
orientations, echoes, repeated acquisitions) so the viewer never scrolls through a scout in the
middle of an axial volume, and sorts every stack along its slice normal because file names and
InstanceNumbers cannot be trusted to follow anatomy. Nodes are frozen and rebuilt only for the
studies a batch touched, so the UI refreshes just those.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from tuiviewer.dicom.scanning import NO_SOP_INSTANCE_UID, InstanceRecord

#: Two slice normals whose angle is below this are the same orientation. Scanners write
#: cosines with 4–6 decimals and reconstructions jitter by ~1e-4; a real change of plane (or a
#: tilted localizer) is far above this.
NORMAL_TOLERANCE_DEGREES = 1.0
_COS_TOLERANCE = math.cos(math.radians(NORMAL_TOLERANCE_DEGREES))

#: Slice positions closer than this along the normal (mm) count as the same position.
POSITION_TOLERANCE_MM = 0.01

#: A normal whose largest component is at least this is named after that axis; others are
#: "oblique". cos(30°): a 30° gantry tilt still reads as axial.
_PLANE_NAMING_THRESHOLD = math.cos(math.radians(30.0))

Vector = tuple[float, float, float]


@dataclass(frozen=True)
class StackNode:
    """Images of one series that form one geometric stack, sorted along the slice normal."""

    key: str
    label: str
    instances: tuple[InstanceRecord, ...]


@dataclass(frozen=True)
class SeriesNode:
    """One series with its stacks (a single stack when the series is homogeneous)."""

    uid: str
    number: int | None
    modality: str
    description: str
    stacks: tuple[StackNode, ...]

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.stacks)


@dataclass(frozen=True)
class StudyNode:
    """One study with its series sorted by series number."""

    uid: str
    date: str
    time: str
    description: str
    accession: str
    modalities: tuple[str, ...]
    series: tuple[SeriesNode, ...]


@dataclass(frozen=True)
class PatientNode:
    """One patient: identified by PatientID *and* PatientName, so a reused ID never merges."""

    key: str
    name: str
    patient_id: str
    birth_date: str
    sex: str
    studies: tuple[StudyNode, ...]


# --------------------------------------------------------------------------------------------
# Geometry


def _normal(orientation: tuple[float, ...]) -> Vector | None:
    """Unit slice normal ``row × column`` (PS3.3 C.7.6.2.1.1), or ``None`` if degenerate."""
    rx, ry, rz, cx, cy, cz = orientation[:6]
    nx, ny, nz = ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx
    length = math.sqrt(nx * nx + ny * ny + nz * nz)
    if length < 1e-6:
        return None
    return (nx / length, ny / length, nz / length)


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def plane_name(normal: Vector) -> str:
    """ "axial", "sagittal", "coronal" or "oblique" for a slice normal in LPS coordinates."""
    ax, ay, az = (abs(v) for v in normal)
    biggest = max(ax, ay, az)
    if biggest < _PLANE_NAMING_THRESHOLD:
        return "oblique"
    if biggest == az:
        return "axial"
    if biggest == ax:
        return "sagittal"
    return "coronal"


def _geometry(record: InstanceRecord) -> tuple[Vector, Vector] | None:
    """(normal, position) when the record can be placed in space."""
    if record.image_orientation is None or record.image_position is None:
        return None
    normal = _normal(record.image_orientation)
    if normal is None:
        return None
    return normal, record.image_position


def slice_location(record: InstanceRecord) -> float | None:
    """Position along the slice normal in mm (what a reader calls the slice location).

    Without a usable orientation, the z coordinate; without a position, ``None``.
    """
    geometry = _geometry(record)
    if geometry is not None:
        return _dot(*geometry)
    return record.image_position[2] if record.image_position is not None else None


# --------------------------------------------------------------------------------------------
# Splitting a series into stacks


@dataclass
class _Group:
    """Mutable working set while splitting: one candidate stack."""

    normal: Vector | None
    echo: int | None
    size: tuple[int | None, int | None]
    members: list[InstanceRecord]
    acquisition: int | None = None
    split_by_acquisition: bool = False


def _instance_order(r: InstanceRecord) -> tuple[int, int, str]:
    # Missing InstanceNumbers sort last; the UID makes the order total and deterministic.
    n = r.instance_number
    return (0 if n is not None else 1, n if n is not None else 0, r.sop_instance_uid)


def _group_geometric(records: list[InstanceRecord]) -> tuple[list[_Group], list[InstanceRecord]]:
    """Cluster records by (normal within tolerance, echo, matrix size); the rest lack geometry."""
    groups: list[_Group] = []
    flat: list[InstanceRecord] = []
    for r in sorted(records, key=_instance_order):
        geometry = _geometry(r)
        if geometry is None:
            flat.append(r)
            continue
        normal = geometry[0]
        size = (r.rows, r.columns)
        for g in groups:
            if (
                g.echo == r.echo_number
                and g.size == size
                and g.normal is not None
                and _dot(g.normal, normal) >= _COS_TOLERANCE
            ):
                g.members.append(r)
                break
        else:
            groups.append(_Group(normal, r.echo_number, size, [r]))
    return groups, flat


def _acquisitions_overlap(positions: list[list[float]]) -> bool:
    """Whether acquisitions cover the same place: a shared position, or overlapping ranges.

    Slices that merely tile the volume (each with its own AcquisitionNumber, as many CT
    scanners write) neither share a position nor interleave, so they do not overlap.
    """
    tagged = sorted((p, i) for i, ps in enumerate(positions) for p in ps)
    for (p, i), (q, j) in zip(tagged, tagged[1:], strict=False):
        if i != j and q - p <= POSITION_TOLERANCE_MM:
            return True
    ranges = sorted((min(ps), max(ps)) for ps in positions if len(ps) >= 2)
    reach = -math.inf
    for low, high in ranges:
        if low < reach - POSITION_TOLERANCE_MM:
            return True
        reach = max(reach, high)
    return False


def _split_acquisitions(group: _Group) -> list[_Group]:
    """Split by AcquisitionNumber only when acquisitions overlap in space.

    Many CT scanners give every slice its own AcquisitionNumber; those slices tile the volume
    without overlapping and stay one stack. Two passes over the same positions (a pre- and
    post-contrast run stored in one series) overlap and become two stacks.
    """
    assert group.normal is not None
    by_acquisition: dict[int | None, list[InstanceRecord]] = {}
    for r in group.members:
        by_acquisition.setdefault(r.acquisition_number, []).append(r)
    if len(by_acquisition) < 2:
        return [group]
    normal = group.normal
    positions = [
        [_dot(r.image_position, normal) for r in members if r.image_position is not None]
        for members in by_acquisition.values()
    ]
    if not _acquisitions_overlap(positions):
        return [group]
    return [
        _Group(group.normal, group.echo, group.size, members, acquisition, True)
        for acquisition, members in by_acquisition.items()
    ]


def _is_localizer(group: _Group, others: list[_Group]) -> bool:
    if any(
        "LOCALIZER" in (t.upper() for t in r.image_type) for r in group.members
    ):  # CT scouts and many MR survey scans say so (PS3.3 C.8.2.1.1.1)
        return True
    # Otherwise a lone image in a plane no other stack of the series uses is a scout.
    if len(group.members) != 1 or group.normal is None:
        return False
    bigger = [o for o in others if o is not group and len(o.members) > 1 and o.normal]
    return bool(bigger) and all(
        o.normal is not None and abs(_dot(o.normal, group.normal)) < _COS_TOLERANCE for o in bigger
    )


def _count_label(members: list[InstanceRecord]) -> str:
    images = len(members)
    text = f"{images} image" + ("" if images == 1 else "s")
    frames = sum(r.frames for r in members)
    if frames > images:
        text += f" ({frames} frames)"
    return text


def _stack_key(series_uid: str, g: _Group) -> str:
    parts = [series_uid]
    if g.normal is None:
        parts.append("flat")
    else:
        parts.append("n" + ",".join(f"{v:+.3f}" for v in g.normal))
    parts.append(f"e{g.echo}" if g.echo is not None else "e-")
    if g.split_by_acquisition:
        parts.append(f"a{g.acquisition}")
    parts.append(f"{g.size[0]}x{g.size[1]}")
    return "/".join(parts)


def build_stacks(series_uid: str, records: Iterable[InstanceRecord]) -> tuple[StackNode, ...]:
    """Split one series' records into sorted, labelled stacks (see the module docstring)."""
    groups, flat = _group_geometric(list(records))
    split: list[_Group] = []
    for g in groups:
        split.extend(_split_acquisitions(g))
    if flat:
        split.append(_Group(None, None, (None, None), flat))

    several = len(split) > 1
    echoes = {g.echo for g in split if g.normal is not None}
    sizes = {g.size for g in split if g.normal is not None}
    stacks: list[tuple[tuple[int, int, int, str], StackNode]] = []
    used_keys: set[str] = set()
    for g in split:
        normal = g.normal
        if normal is not None:
            # Along the normal (every member has a position here), then InstanceNumber, UID.
            members = sorted(
                g.members,
                key=lambda r: (
                    _dot(r.image_position or (0.0, 0.0, 0.0), normal),
                    _instance_order(r),
                ),
            )
        else:
            members = sorted(g.members, key=_instance_order)
        words = [plane_name(g.normal)] if g.normal is not None else []
        words.append(_count_label(members))
        qualifiers = []
        if several and len(echoes) > 1 and g.echo is not None:
            qualifiers.append(f"echo {g.echo}")
        if g.split_by_acquisition and g.acquisition is not None:
            qualifiers.append(f"acquisition {g.acquisition}")
        if several and len(sizes) > 1 and g.size[0] and g.size[1]:
            qualifiers.append(f"{g.size[1]}×{g.size[0]}")
        label = " ".join(words)
        if qualifiers:
            label += ", " + ", ".join(qualifiers)
        if several and _is_localizer(g, split):
            label += " (localizer)"
        key = base_key = _stack_key(series_uid, g)
        suffix = 1
        while key in used_keys:  # normals a hair over the tolerance apart round alike
            suffix += 1
            key = f"{base_key}#{suffix}"
        used_keys.add(key)
        node = StackNode(key, label, tuple(members))
        # Stacks in acquisition order: the scout first, echoes and passes as acquired.
        first = min((_instance_order(r) for r in members), default=(1, 0, ""))
        order = (first[0], first[1], g.echo or 0, node.key)
        stacks.append((order, node))
    stacks.sort(key=lambda item: item[0])
    return tuple(node for _, node in stacks)


# --------------------------------------------------------------------------------------------
# The index


def patient_key(record: InstanceRecord) -> str:
    """Identity of a patient in the browser: PatientID and PatientName together."""
    return json.dumps([record.patient_id, record.patient_name], ensure_ascii=False)


class StudyIndex:
    """Instances grouped for the study browser; thread-safe, incremental.

    A scan worker calls :meth:`add` with each batch; the UI thread calls :meth:`patients` or
    :meth:`study` for the studies :meth:`add` reported as changed. Every file is shown: the same
    path found again (a rescan) is kept once, but two files holding the same SOP Instance UID
    (an original and its edited copy, two copies of a CD) are both listed, and counted in
    :attr:`duplicates` so the browser can say so.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instances: dict[str, InstanceRecord] = {}
        """By file path."""
        self._by_sop: dict[str, InstanceRecord] = {}
        """First file seen for each SOP Instance UID."""
        self._study_instances: dict[str, dict[str, InstanceRecord]] = {}
        self._study_patient: dict[str, str] = {}
        self._study_nodes: dict[str, StudyNode] = {}
        self.duplicates = 0
        """How many files hold a SOP Instance UID that another indexed file holds too."""

    def add(self, records: Iterable[InstanceRecord]) -> set[str]:
        """Add records; returns the Study Instance UIDs whose nodes changed."""
        changed: set[str] = set()
        with self._lock:
            for record in records:
                key = str(record.path)
                if key in self._instances:
                    continue
                self._instances[key] = record
                if record.sop_instance_uid != NO_SOP_INSTANCE_UID:
                    if record.sop_instance_uid in self._by_sop:
                        self.duplicates += 1
                    else:
                        self._by_sop[record.sop_instance_uid] = record
                study = record.study_uid
                self._study_instances.setdefault(study, {})[key] = record
                # A study belongs to the patient of its first instance; a study UID shared by
                # two patients is a data error the tag view makes visible.
                self._study_patient.setdefault(study, patient_key(record))
                changed.add(study)
            for study in changed:
                self._study_nodes.pop(study, None)
        return changed

    def __len__(self) -> int:
        with self._lock:
            return len(self._instances)

    def find(self, sop_instance_uid: str) -> InstanceRecord | None:
        """The first indexed file of an instance, or ``None``."""
        with self._lock:
            return self._by_sop.get(sop_instance_uid)

    def study(self, uid: str) -> StudyNode:
        """The node of one study.

        Raises:
            KeyError: no instance of that study was added.
        """
        with self._lock:
            if uid not in self._study_instances:
                raise KeyError(f"No study with Study Instance UID {uid!r} has been indexed.")
            return self._study_node(uid)

    def patients(self) -> list[PatientNode]:
        """Patients by name then ID; their studies newest first; series by number."""
        with self._lock:
            by_patient: dict[str, list[StudyNode]] = {}
            for study_uid, pkey in self._study_patient.items():
                by_patient.setdefault(pkey, []).append(self._study_node(study_uid))
            patients = []
            for pkey, studies in by_patient.items():
                patient_id, name = json.loads(pkey)
                first = next(iter(self._study_instances[studies[0].uid].values()))
                # Stable sorts: newest first, undated last, UID for ties.
                studies.sort(key=lambda s: s.uid)
                studies.sort(key=lambda s: s.date + s.time, reverse=True)
                studies.sort(key=lambda s: s.date == "")
                patients.append(
                    PatientNode(
                        key=pkey,
                        name=name,
                        patient_id=patient_id,
                        birth_date=first.patient_birth_date,
                        sex=first.patient_sex,
                        studies=tuple(studies),
                    )
                )
        patients.sort(key=lambda p: (p.name.casefold(), p.name, p.patient_id, p.key))
        return patients

    def _study_node(self, uid: str) -> StudyNode:
        node = self._study_nodes.get(uid)
        if node is None:
            node = _build_study(uid, list(self._study_instances[uid].values()))
            self._study_nodes[uid] = node
        return node


def _build_study(uid: str, records: list[InstanceRecord]) -> StudyNode:
    by_series: dict[str, list[InstanceRecord]] = {}
    for r in records:
        by_series.setdefault(r.series_uid, []).append(r)
    series = []
    for series_uid, members in by_series.items():
        first = min(members, key=_instance_order)
        series.append(
            SeriesNode(
                uid=series_uid,
                number=first.series_number,
                modality=first.modality,
                description=first.series_description,
                stacks=build_stacks(series_uid, members),
            )
        )
    series.sort(
        key=lambda s: (
            s.number is None,
            s.number if s.number is not None else 0,
            s.description,
            s.uid,
        )
    )
    first = min(records, key=_instance_order)

    def common(attribute: str) -> str:
        # Some archives leave the study attributes empty in all but a few instances.
        for r in [first, *records]:
            value = getattr(r, attribute)
            if value:
                return str(value)
        return ""

    modalities = tuple(sorted({s.modality for s in series if s.modality}))
    return StudyNode(
        uid=uid,
        date=common("study_date"),
        time=common("study_time"),
        description=common("study_description"),
        accession=common("accession_number"),
        modalities=modalities,
        series=tuple(series),
    )
