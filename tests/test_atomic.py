"""The shared whole-folder-or-nothing writer."""

import pytest

from base.atomic import OutputError, atomic_directory


def test_failure_inside_the_block_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "half.parquet").write_text("partial")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_the_old_folder_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no leftovers beside it


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(OutputError, match="out: exists and is not a folder"):
        with atomic_directory(tmp_path / "out"):
            pass


def test_unwritable_place_is_named_with_one_line_error():
    # /proc refuses new folders even for root, so this runs as any user (CI runs as root).
    with pytest.raises(OutputError, match="cannot write there"):
        with atomic_directory("/proc/sote-risk-out"):
            pass


def test_atomic_write_text_replaces_whole_files_and_leaves_no_temporary(tmp_path, monkeypatch):
    import os

    from base.atomic import atomic_write_text

    target = tmp_path / "nested" / "keys.json"
    atomic_write_text(target, "old", mode=0o600)
    assert target.read_text() == "old"
    assert target.stat().st_mode & 0o777 == 0o600

    def rename_fails(*args):  # the crash between writing the temporary file and the rename
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", rename_fails)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"  # the old file survives a failed write
    assert sorted(p.name for p in target.parent.iterdir()) == ["keys.json"]
