"""Files written whole, only when they change, owner and mode set before the content."""

from __future__ import annotations

import grp
import os
import stat

import pytest
from lab_monitoring import files


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_written_with_its_mode_and_reported_changed(tmp_path):
    target = tmp_path / "etc" / "x" / "app.yml"

    assert files.write(target, "a: 1\n", mode=0o640)

    assert target.read_text() == "a: 1\n"
    assert mode(target) == 0o640
    # Directories the service's user must walk into, whatever the umask.
    assert mode(target.parent) == 0o755


def test_the_same_content_again_is_not_a_change_and_leaves_the_file_alone(tmp_path):
    target = tmp_path / "app.yml"
    files.write(target, "a: 1\n")
    inode = target.stat().st_ino

    assert not files.write(target, "a: 1\n")
    assert target.stat().st_ino == inode


def test_bytes_and_text_are_the_same_content(tmp_path):
    target = tmp_path / "key.asc"
    files.write(target, b"key\n")

    assert not files.write(target, "key\n")


def test_a_wrong_mode_is_repaired_without_counting_as_a_change(tmp_path):
    target = tmp_path / "secret"
    files.write(target, "s3cret", mode=0o640)
    os.chmod(target, 0o644)

    assert not files.write(target, "s3cret", mode=0o640)
    assert mode(target) == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another group")
def test_a_group_that_exists_owns_the_file(tmp_path):
    group = grp.getgrgid(os.getgid()).gr_name if os.getgid() else "daemon"

    files.write(tmp_path / "f", "x", mode=0o640, group=group)

    assert (tmp_path / "f").stat().st_gid == grp.getgrnam(group).gr_gid


def test_a_group_that_does_not_exist_leaves_the_file_to_root(tmp_path, caplog):
    target = tmp_path / "f"

    files.write(target, "x", mode=0o640, group="no-such-group-here")

    assert target.stat().st_gid == 0 or os.geteuid() != 0
    assert "no-such-group-here does not exist" in caplog.text


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "app.yml"
    files.write(target, "old\n")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        files.write(target, "new\n")

    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.yml"]


def test_read_of_a_missing_file_is_none(tmp_path):
    assert files.read(tmp_path / "nothing") is None


def test_an_args_line_is_what_the_packaged_unit_reads_back(tmp_path):
    target = tmp_path / "default"
    files.write(target, files.args_line(["--a=1", "--b.c=x:9"], "# header\n"))

    assert target.read_text() == '# header\nARGS="--a=1 --b.c=x:9"\n'
    assert files.read_args(target) == ["--a=1", "--b.c=x:9"]


@pytest.mark.parametrize(
    "flag", ["--a=1 --b=2", '--a="x"', "--a=x\\", "--a=$HOME", "-a", "--a=x\ny", "--A=1"]
)
def test_a_flag_that_would_not_survive_systemd_is_refused(flag):
    with pytest.raises(ValueError, match="unsafe command-line flag"):
        files.args_line([flag], "")


def test_a_file_without_args_has_no_flags(tmp_path):
    (tmp_path / "default").write_text("# only a comment\n")

    assert files.read_args(tmp_path / "default") == []
    assert files.read_args(tmp_path / "missing") == []
