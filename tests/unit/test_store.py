"""The local study store keeps PHI private (0600/0700), inside its root, bounded, and purgeable."""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tuiviewer.commands.purge import run_purge
from tuiviewer.store import (
    INCOMING_DIR,
    InvalidUIDError,
    LocalStore,
    StoreError,
    format_size,
    is_uid_name,
    uid_name,
    validate_uid,
)

BAD_UIDS = [
    "",
    "1..2",
    "1.02",
    "../x",
    "..",
    "1.2/3",
    "/1.2",
    "a.b",
    ".1.2",
    "1.2.",
    "1.2 ",
    "1.2\x00",
    "１.２",  # full-width digits: str.isdigit() says yes, PS3.5 says no
    "1." + "2" * 63,  # 65 characters
]


def _testdata(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, name
    return Path(str(path))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def _put(store: LocalStore, study: str, series: str, sop: str, payload: bytes) -> Path:
    handle, temp = store.open_temp(study, series, sop)
    with handle:
        handle.write(payload)
    return store.commit(temp, study, series, sop)


# --- UIDs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "reportsi.dcm"])
def test_validate_uid_accepts_uids_from_real_files(name: str) -> None:
    ds = dcmread(_testdata(name))
    uids = [ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID]
    uids.append(ds.file_meta.TransferSyntaxUID)
    for uid in uids:
        assert validate_uid(uid) == str(uid)


def test_validate_uid_accepts_generated_and_edge_uids() -> None:
    max_length = "1." + "2" * 62
    assert len(max_length) == 64
    for uid in [generate_uid(), "0", "1.0.2", "2.25.0", max_length]:
        assert validate_uid(uid) == uid


@pytest.mark.parametrize("bad", BAD_UIDS)
def test_validate_uid_refuses_and_quotes_the_value(bad: str) -> None:
    with pytest.raises(InvalidUIDError) as info:
        validate_uid(bad, "Study Instance UID")
    assert repr(bad) in str(info.value)
    assert str(info.value).startswith("Study Instance UID")


def test_validate_uid_says_which_rule_is_broken() -> None:
    with pytest.raises(InvalidUIDError, match="leading zero"):
        validate_uid("1.02")
    with pytest.raises(InvalidUIDError, match="65 characters"):
        validate_uid("1." + "2" * 63)
    with pytest.raises(InvalidUIDError, match="'/' is not allowed"):
        validate_uid("1.2/3")


@pytest.mark.parametrize("bad", BAD_UIDS)
@pytest.mark.parametrize("position", [0, 1, 2])
def test_a_non_conformant_uid_never_becomes_a_path(
    store: LocalStore, tmp_path: Path, bad: str, position: int
) -> None:
    """A PACS may hold such UIDs; they are named by a hash, never by their raw text."""
    uids = ["1.2.3", "1.2.3.4", "1.2.3.4.5"]
    uids[position] = bad
    before = sorted(tmp_path.rglob("*"))
    if not bad.rstrip("\x00 "):
        with pytest.raises(InvalidUIDError):
            store.instance_path(*uids)
        with pytest.raises(InvalidUIDError):
            store.open_temp(*uids)
        assert sorted(tmp_path.rglob("*")) == before
        return
    path = store.instance_path(*uids)
    parts = path.relative_to(store.root).parts
    assert len(parts) == 3 and path.resolve().is_relative_to(store.root.resolve())
    name = parts[position].removesuffix(".dcm")
    if bad.rstrip("\x00 ") != "1.2":  # "1.2 " and "1.2\x00" are "1.2" padded
        assert re.fullmatch(r"x-[0-9a-f]{32}", name), name
    handle, temp = store.open_temp(*uids)
    handle.close()
    assert temp.resolve().is_relative_to(store.root.resolve())
    assert path.parent.is_dir()
    assert all(p.resolve().is_relative_to(store.root.resolve()) for p in tmp_path.rglob("*"))


def test_uid_names_are_stable_distinct_and_refuse_non_identifiers() -> None:
    hex_uid = "6b8a4c2e9f0d4d7e8b1a2c3d4e5f6a7b"
    assert uid_name(hex_uid) == uid_name(hex_uid) != uid_name(hex_uid.upper())
    assert uid_name("1.2.840.10008.1") == "1.2.840.10008.1"
    assert is_uid_name(uid_name(hex_uid)) and is_uid_name("1.2.3") and not is_uid_name("x-1")
    with pytest.raises(InvalidUIDError, match="empty"):
        uid_name("")
    with pytest.raises(InvalidUIDError, match="not an identifier"):
        uid_name("9" * 2000)


def test_instance_path_is_under_root(store: LocalStore) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    path = store.instance_path(study, series, sop)
    assert path == store.root / study / series / f"{sop}.dcm"
    assert path.resolve().is_relative_to(store.root.resolve())


# --- permissions and writing --------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_write_dataset_is_readable_and_private(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        store = LocalStore(tmp_path / "a" / "store")
        original = dcmread(_testdata("CT_small.dcm"))
        path = store.write_dataset(dcmread(_testdata("CT_small.dcm")))
    finally:
        os.umask(old)

    assert path.parent.parent.parent == store.root
    back = dcmread(path)
    assert back.SOPInstanceUID == original.SOPInstanceUID
    assert back.PatientName == original.PatientName
    assert back.PixelData == original.PixelData
    # PS3.10 §7.1: 128-byte preamble then "DICM".
    assert path.read_bytes()[128:132] == b"DICM"
    assert back.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert _mode(path) == 0o600
    # Bookkeeping files (last-access marker) are private too.
    for other in store.root.rglob("*"):
        assert _mode(other) == (0o700 if other.is_dir() else 0o600), other
    for directory in (tmp_path / "a", store.root, path.parent.parent, path.parent):
        assert _mode(directory) == 0o700, directory
    assert store.has_instance(
        original.StudyInstanceUID, original.SeriesInstanceUID, original.SOPInstanceUID
    )


def test_write_dataset_uses_overriding_uids(store: LocalStore) -> None:
    ds = dcmread(_testdata("CT_small.dcm"))
    del ds.StudyInstanceUID
    path = store.write_dataset(ds, study_uid="1.2.3", series_uid="1.2.3.4")
    assert path == store.root / "1.2.3" / "1.2.3.4" / f"{ds.SOPInstanceUID}.dcm"


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_write_dataset_never_writes_a_path_like_uid_from_the_peer(
    store: LocalStore, tmp_path: Path
) -> None:
    ds = dcmread(_testdata("CT_small.dcm"))
    ds.StudyInstanceUID = "../../escaped"
    path = store.write_dataset(ds)
    assert path.resolve().is_relative_to(store.root.resolve())
    assert path.relative_to(store.root).parts[0] == uid_name("../../escaped")
    assert not any(p.name == "escaped" for p in tmp_path.rglob("*"))
    assert [s.study_uid for s in store.studies()] == [uid_name("../../escaped")]
    assert str(dcmread(path).StudyInstanceUID) == "../../escaped"  # the file keeps its value


def test_write_dataset_without_transfer_syntax_leaves_nothing(store: LocalStore) -> None:
    ds = dcmread(_testdata("CT_small.dcm"))
    del ds.file_meta
    with pytest.raises(StoreError, match="Transfer Syntax UID"):
        store.write_dataset(ds)
    assert store.size_bytes() == 0
    assert store.instance_uids(ds.StudyInstanceUID) == set()


def test_streaming_write_is_invisible_until_committed(
    store: LocalStore, permissive_umask: None
) -> None:
    payload = _testdata("CT_small.dcm").read_bytes()
    handle, temp = store.open_temp("1.2.3", "1.2.3.4", "1.2.3.4.5")
    with handle:
        handle.write(payload)
    assert _mode(temp) == 0o600
    assert not store.has_instance("1.2.3", "1.2.3.4", "1.2.3.4.5")
    assert store.instance_uids("1.2.3") == set()

    final = store.commit(temp, "1.2.3", "1.2.3.4", "1.2.3.4.5")
    assert not temp.exists()
    assert final.read_bytes() == payload
    assert _mode(final) == 0o600
    assert store.has_instance("1.2.3", "1.2.3.4", "1.2.3.4.5")


def test_instance_uids_counts_only_committed_files(store: LocalStore) -> None:
    _put(store, "1.2.3", "1.2.3.1", "1.2.3.1.1", b"a" * 10)
    _put(store, "1.2.3", "1.2.3.2", "1.2.3.2.1", b"b" * 10)
    handle, _temp = store.open_temp("1.2.3", "1.2.3.2", "1.2.3.2.2")
    with handle:
        handle.write(b"half an instance")
    assert store.instance_uids("1.2.3") == {"1.2.3.1.1", "1.2.3.2.1"}
    assert not store.has_instance("1.2.3", "1.2.3.2", "1.2.3.2.2")
    [study] = store.studies()
    assert study.instances == 2
    assert store.instance_uids("9.9") == set()


def test_commit_refuses_a_file_not_from_open_temp(store: LocalStore, tmp_path: Path) -> None:
    outsider = tmp_path / "outsider.tmp"
    outsider.write_bytes(b"x")
    with pytest.raises(StoreError, match="open_temp"):
        store.commit(outsider, "1.2.3", "1.2.3.4", "1.2.3.4.5")
    assert outsider.read_bytes() == b"x"
    assert not store.has_instance("1.2.3", "1.2.3.4", "1.2.3.4.5")


def test_default_root_honours_cache_dir_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permissive_umask: None
) -> None:
    monkeypatch.setenv("TUIVIEWER_CACHE_DIR", str(tmp_path / "cache"))
    store = LocalStore()
    assert store.root == tmp_path / "cache" / "store"
    assert _mode(tmp_path / "cache") == 0o700
    assert _mode(store.root) == 0o700


# --- LRU and eviction ---------------------------------------------------------------------------

SIZES = {"1.1": 3000, "1.2": 4000, "1.3": 5000}
TIMES = {"1.1": 1_000_000.0, "1.2": 2_000_000.0, "1.3": 3_000_000.0}


@pytest.fixture
def three_studies(store: LocalStore) -> LocalStore:
    for study, size in SIZES.items():
        # Two instances per study, so sizes add across files.
        _put(store, study, f"{study}.1", f"{study}.1.1", b"\0" * (size - 1000))
        _put(store, study, f"{study}.1", f"{study}.1.2", b"\0" * 1000)
        store.touch(study, at=TIMES[study])
    return store


def test_studies_are_listed_most_recent_first(three_studies: LocalStore) -> None:
    listed = three_studies.studies()
    assert [s.study_uid for s in listed] == ["1.3", "1.2", "1.1"]
    assert {s.study_uid: s.size_bytes for s in listed} == SIZES
    assert {s.study_uid: s.last_access for s in listed} == TIMES
    assert all(s.instances == 2 for s in listed)
    assert three_studies.size_bytes() == sum(SIZES.values())


def test_touch_moves_a_study_to_the_front(three_studies: LocalStore) -> None:
    three_studies.touch("1.1")
    assert three_studies.studies()[0].study_uid == "1.1"


def test_touch_of_unknown_study_is_an_error(store: LocalStore) -> None:
    with pytest.raises(StoreError, match=r"'1\.9'"):
        store.touch("1.9")


def test_evict_removes_least_recently_used(three_studies: LocalStore) -> None:
    cap = SIZES["1.2"] + SIZES["1.3"]
    assert three_studies.evict(cap_bytes=cap) == ["1.1"]
    assert not (three_studies.root / "1.1").exists()
    assert [s.study_uid for s in three_studies.studies()] == ["1.3", "1.2"]
    assert three_studies.size_bytes() == cap


def test_evict_keeps_a_protected_study(three_studies: LocalStore) -> None:
    cap = SIZES["1.2"] + SIZES["1.3"]
    assert three_studies.evict(cap_bytes=cap, protected={"1.1"}) == ["1.2"]
    assert {s.study_uid for s in three_studies.studies()} == {"1.1", "1.3"}


def test_evict_keeps_a_study_in_use(three_studies: LocalStore) -> None:
    cap = SIZES["1.2"] + SIZES["1.3"]
    with three_studies.in_use("1.1"):
        assert three_studies.evict(cap_bytes=cap) == ["1.2"]
    assert three_studies.evict(cap_bytes=SIZES["1.3"]) == ["1.1"]


def test_evict_may_stay_over_cap_rather_than_delete_protected(three_studies: LocalStore) -> None:
    assert three_studies.evict(cap_bytes=0, protected={"1.1", "1.2", "1.3"}) == []
    assert three_studies.size_bytes() == sum(SIZES.values())


def test_evict_uses_constructor_cap_and_none_means_unbounded(
    three_studies: LocalStore,
) -> None:
    assert three_studies.evict() == []
    capped = LocalStore(three_studies.root, cap_bytes=SIZES["1.3"])
    assert capped.evict() == ["1.1", "1.2"]


# --- purge --------------------------------------------------------------------------------------


def test_purge_one_study(three_studies: LocalStore) -> None:
    assert three_studies.purge("1.2") == ["1.2"]
    assert {s.study_uid for s in three_studies.studies()} == {"1.1", "1.3"}
    with pytest.raises(StoreError, match=r"No study '1\.2'"):
        three_studies.purge("1.2")


def test_purge_of_a_study_in_use_is_refused(three_studies: LocalStore) -> None:
    with three_studies.in_use("1.2"), pytest.raises(StoreError, match="being retrieved"):
        three_studies.purge("1.2")
    assert (three_studies.root / "1.2").is_dir()


def test_purge_all_removes_studies_and_leftover_temp_files(three_studies: LocalStore) -> None:
    leftover = three_studies.study_dir("1.3") / "1.3.1" / ".1.3.1.9.abc.tmp"  # older versions'
    leftover.write_bytes(b"interrupted")
    handle, temp = three_studies.open_temp("1.4", "1.4.1", "1.4.1.1")
    with handle:
        handle.write(b"being written")
    assert three_studies.purge() == ["1.1", "1.2", "1.3", "1.4"]
    assert not leftover.exists()
    # Only the pool of slots is left (a writer may be using one), and nothing in it counts.
    assert [p.name for p in three_studies.root.iterdir()] == [INCOMING_DIR]
    assert three_studies.studies() == []
    three_studies.discard(temp)
    assert temp.stat().st_size == 0 and three_studies.unfinished() == []


def test_purge_does_not_follow_symlinks(three_studies: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.dcm"
    victim.write_bytes(b"someone else's file")
    (three_studies.root / "1.2" / "1.2.1" / "9.9.dcm").symlink_to(victim)
    (three_studies.root / "1.2" / "1.2.2").symlink_to(outside, target_is_directory=True)
    (three_studies.root / "7.7").symlink_to(outside, target_is_directory=True)

    # Links are not followed when counting either.
    assert three_studies.instance_uids("1.2") == {"1.2.1.1", "1.2.1.2"}
    assert "7.7" not in {s.study_uid for s in three_studies.studies()}

    three_studies.purge("1.2")
    three_studies.purge()
    assert victim.read_bytes() == b"someone else's file"
    assert list(three_studies.root.iterdir()) == []


# --- tuiviewer purge ----------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _stored_ct(store: LocalStore) -> Dataset:
    ds = dcmread(_testdata("CT_small.dcm"))
    store.write_dataset(dcmread(_testdata("CT_small.dcm")))
    return ds


def test_run_purge_without_yes_and_without_tty_refuses(store: LocalStore) -> None:
    ds = _stored_ct(store)
    out, err = io.StringIO(), io.StringIO()
    code = run_purge(None, yes=False, stdout=out, stderr=err, store=store, stdin=io.StringIO())
    assert code == 2
    assert "--yes" in err.getvalue()
    assert store.instance_uids(ds.StudyInstanceUID) == {ds.SOPInstanceUID}


def test_run_purge_yes_removes_and_prints_uids_not_names(store: LocalStore) -> None:
    ds = _stored_ct(store)
    size = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    out, err = io.StringIO(), io.StringIO()
    code = run_purge(None, yes=True, stdout=out, stderr=err, store=store)
    assert code == 0, err.getvalue()
    text = out.getvalue() + err.getvalue()
    assert ds.StudyInstanceUID in text
    assert format_size(size) in text
    assert "1 instance" in text
    assert str(ds.PatientName) not in text
    assert ds.PatientName.family_name not in text
    assert ds.PatientID not in text
    assert store.studies() == []


def test_run_purge_one_study(three_studies: LocalStore) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_purge("1.2", yes=True, stdout=out, stderr=err, store=three_studies) == 0
    assert "1.2" in out.getvalue()
    assert {s.study_uid for s in three_studies.studies()} == {"1.1", "1.3"}


def test_run_purge_unknown_or_invalid_study(three_studies: LocalStore) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_purge("1.9", yes=True, stdout=out, stderr=err, store=three_studies) == 1
    assert "'1.9'" in err.getvalue()
    err = io.StringIO()
    assert run_purge("../1.1", yes=True, stdout=out, stderr=err, store=three_studies) == 2
    assert "'../1.1'" in err.getvalue()
    assert len(three_studies.studies()) == 3


def test_run_purge_asks_on_a_terminal(three_studies: LocalStore) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run_purge(
        None, yes=False, stdout=out, stderr=err, store=three_studies, stdin=_Terminal("n\n")
    )
    assert code == 1
    assert "Nothing deleted" in out.getvalue()
    assert len(three_studies.studies()) == 3

    out = io.StringIO()
    code = run_purge(
        None, yes=False, stdout=out, stderr=err, store=three_studies, stdin=_Terminal("yes\n")
    )
    assert code == 0
    assert three_studies.studies() == []


def test_run_purge_of_empty_store(store: LocalStore) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_purge(None, yes=True, stdout=out, stderr=err, store=store) == 0
    assert "empty" in out.getvalue()


def test_a_quarantined_instance_leaves_its_study_and_is_remembered(tmp_path: Path) -> None:
    from pydicom.uid import generate_uid

    store = LocalStore(tmp_path / "store")
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    handle, temp = store.open_temp(study, series, sop)
    with handle:
        handle.write(b"not read again")
    path = store.commit(temp, study, series, sop)
    moved = store.quarantine(study, series, sop, "It inflates beyond the limit.")
    assert not path.exists() and moved.read_bytes() == b"not read again"
    assert not store.has_instance(study, series, sop)
    assert store.instance_uids(study) == set()
    assert store.is_quarantined(study, series, sop)
    [kept] = store.quarantined(study)
    assert (kept.sop_uid, kept.reason) == (sop, "It inflates beyond the limit.")
    assert stat.S_IMODE(moved.stat().st_mode) == 0o600
    assert stat.S_IMODE(moved.parent.stat().st_mode) == 0o700
    # Bytes refused on arrival go straight there; purging the study removes its quarantine.
    other = generate_uid()
    store.quarantine(study, series, other, "Refused on arrival.", data=b"bomb")
    assert {q.sop_uid for q in store.quarantined(study)} == {sop, other}
    store.purge(study)
    assert store.quarantined(study) == []
