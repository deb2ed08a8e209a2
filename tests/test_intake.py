"""Tests for grader.intake: staging hostile submissions and choosing the module to grade.

Every archive and folder is built here, inside tmp_path, so each test shows its own input.
"""
from __future__ import annotations

import os
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from grader.errors import InputError
from grader.discovery import choose_module
from grader.intake import IntakeLimits, StagedSubmission, stage

ALEXNET_SYMBOLS = ["AlexNet", "AlexNetLargeKernel", "AlexNetAvgPooling", "analyze_model_kernels"]
MODULE_NAMES = ["cnn_trainer.py", "trainer.py"]


# ----- helpers ---------------------------------------------------------------------------


def make_zip(path: Path, entries: list) -> Path:
    """entries: (name or ZipInfo, bytes or str) pairs, written in order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are deliberate in some tests
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def patch_entry(path: Path, name: str, *, set_flags: int = 0, clear_flags: int = 0, file_size: int | None = None) -> None:
    """Rewrite one entry's flags or uncompressed size in both its local and central headers."""
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename == name)
        start_dir = zf.start_dir
    data = bytearray(path.read_bytes())
    local = info.header_offset
    central = _central_record(data, start_dir, local)
    for flags_at, size_at in ((local + 6, local + 22), (central + 8, central + 24)):
        flags = struct.unpack_from("<H", data, flags_at)[0]
        struct.pack_into("<H", data, flags_at, (flags | set_flags) & ~clear_flags)
        if file_size is not None:
            struct.pack_into("<I", data, size_at, file_size)
    path.write_bytes(bytes(data))


def _central_record(data: bytearray, start: int, local_offset: int) -> int:
    pos = start
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        if struct.unpack_from("<I", data, pos + 42)[0] == local_offset:
            return pos
        pos += 46 + name_len + extra_len + comment_len
    raise AssertionError("central record not found")


def everything_under(path: Path) -> set[str]:
    """All paths (files, folders, links) under path, relative, without following links."""
    found = set()
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            found.add(Path(folder, name).relative_to(path).as_posix())
    return found


def write_tree(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return folder


def staged_from(tmp_path: Path, files: dict[str, str], name: str = "hw4") -> StagedSubmission:
    return stage(write_tree(tmp_path / name, files), tmp_path / "dest")


def warnings_text(notes) -> str:
    return "\n".join(n.text for n in notes if n.level == "warning")


def assert_nothing_staged(dest: Path) -> None:
    # A refused submission leaves no folder that could pass for a complete one.
    assert not dest.exists() or list(dest.iterdir()) == []


# ----- staging: zip archives -------------------------------------------------------------


def test_zip_traversal_entries_are_refused_and_nothing_lands_outside(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [
        ("../evil.py", "x = 1"),
        ("/abs.py", "x = 2"),
        ("a/../../b.py", "x = 3"),
        ("..\\..\\win.py", "x = 4"),
        ("C:\\Users\\evil.py", "x = 5"),
        ("good.py", "x = 6"),
    ])
    with zipfile.ZipFile(archive) as zf:  # the hostile names really are in the archive
        assert {"../evil.py", "/abs.py", "a/../../b.py", "..\\..\\win.py"} <= set(zf.namelist())
    dest = tmp_path / "out" / "dest"

    staged = stage(archive, dest)

    assert staged.files == ["good.py"]
    assert staged.root == dest / "submission"
    assert everything_under(tmp_path) == {"hw4.zip", "out", "out/dest", "out/dest/submission",
                                          "out/dest/submission/good.py"}
    text = warnings_text(staged.notes)
    for name in ("../evil.py", "/abs.py", "a/../../b.py", "..\\..\\win.py", "C:\\Users\\evil.py"):
        assert f"skipped {name}:" in text
    assert staged.source == "hw4.zip"


def test_zip_backslash_folders_are_kept_as_folders(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [("hw4\\cnn_trainer.py", "x = 1")])
    assert stage(archive, tmp_path / "dest").files == ["hw4/cnn_trainer.py"]


@pytest.mark.parametrize("file_type, reason", [(stat.S_IFLNK, "symbolic link"), (stat.S_IFIFO, "not a regular file")])
def test_zip_link_and_special_entries_are_refused(tmp_path, file_type, reason):
    info = zipfile.ZipInfo("cnn_trainer.py")
    info.create_system = 3  # Unix, so the mode bits mean what they say
    info.external_attr = (file_type | 0o777) << 16
    archive = make_zip(tmp_path / "hw4.zip", [(info, "/etc/passwd"), ("ok.py", "x = 1")])

    staged = stage(archive, tmp_path / "dest")

    assert staged.files == ["ok.py"]
    assert not os.path.lexists(staged.root / "cnn_trainer.py")
    assert "skipped cnn_trainer.py:" in warnings_text(staged.notes)
    assert reason in warnings_text(staged.notes)


def test_zip_entry_expanding_past_file_limit_is_refused(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", [("ok.py", "x = 1"), ("weights.bin", b"\0" * 200_000)])
    assert archive.stat().st_size < 2_000  # small on disk, large when expanded
    dest = tmp_path / "dest"

    with pytest.raises(InputError, match="weights.bin in bomb.zip is larger than 1000 bytes"):
        stage(archive, dest, IntakeLimits(max_file_bytes=1000))
    assert_nothing_staged(dest)


def test_zip_entry_with_lying_size_header_is_refused(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", [("weights.bin", b"\0" * 200_000)])
    patch_entry(archive, "weights.bin", file_size=10)  # the header claims 10 bytes
    dest = tmp_path / "dest"

    with pytest.raises(InputError):
        stage(archive, dest, IntakeLimits(max_file_bytes=1000))
    assert_nothing_staged(dest)


def test_zip_expanding_past_total_limit_is_refused(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [(f"part{i}.bin", b"\1" * 600) for i in range(3)])
    dest = tmp_path / "dest"

    with pytest.raises(InputError, match="expands to more than 1000 bytes in all"):
        stage(archive, dest, IntakeLimits(max_total_bytes=1000, max_file_bytes=1000))
    assert_nothing_staged(dest)


def test_zip_with_too_many_files_is_refused(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [(f"f{i}.py", "x = 1") for i in range(5)])
    dest = tmp_path / "dest"

    with pytest.raises(InputError, match="more than 3 files"):
        stage(archive, dest, IntakeLimits(max_files=3))
    assert_nothing_staged(dest)


def test_zip_junk_is_ignored_quietly(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [
        ("__MACOSX/._cnn_trainer.py", "junk"),
        (".DS_Store", "junk"),
        ("hw4/.DS_Store", "junk"),
        ("Thumbs.db", "junk"),
        ("__pycache__/cnn_trainer.cpython-311.pyc", "junk"),
        (".ipynb_checkpoints/hw-checkpoint.ipynb", "junk"),
        ("hw4/old.pyc", "junk"),
        (".git/config", "junk"),
        ("hw4/cnn_trainer.py", "x = 1"),
    ])

    staged = stage(archive, tmp_path / "dest")

    assert staged.files == ["hw4/cnn_trainer.py"]
    assert [n.level for n in staged.notes] == ["info"]
    assert "ignored 8 " in staged.notes[0].text


def test_zip_inside_zip_is_opened_one_level(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", [("hw/cnn_trainer.py", "class AlexNet: pass")])
    archive = make_zip(tmp_path / "hw4.zip", [("inner.zip", inner.read_bytes()), ("readme.txt", "hi")])

    staged = stage(archive, tmp_path / "dest")

    assert staged.files == ["hw/cnn_trainer.py"]
    assert any(n.level == "info" and "inner.zip" in n.text for n in staged.notes)
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["submission"]


def test_zip_nesting_is_opened_one_level_only(tmp_path):
    deepest = make_zip(tmp_path / "deepest.zip", [("cnn_trainer.py", "x = 1")])
    middle = make_zip(tmp_path / "middle.zip", [("deepest.zip", deepest.read_bytes())])
    archive = make_zip(tmp_path / "hw4.zip", [("middle.zip", middle.read_bytes())])

    assert stage(archive, tmp_path / "dest").files == ["deepest.zip"]


def test_inner_zip_entries_get_the_same_checks(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", [("../../escape.py", "x = 1"), ("ok.py", "x = 2")])
    archive = make_zip(tmp_path / "hw4.zip", [("inner.zip", inner.read_bytes())])

    staged = stage(archive, tmp_path / "dest")

    assert staged.files == ["ok.py"]
    assert not (tmp_path / "escape.py").exists()
    assert "skipped ../../escape.py:" in warnings_text(staged.notes)


def test_not_a_zip_is_an_input_error(tmp_path):
    archive = tmp_path / "hw4.zip"
    archive.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(InputError, match=r"^cannot read hw4.zip as a zip archive: File is not a zip file$"):
        stage(archive, tmp_path / "dest")


def test_truncated_zip_is_an_input_error(tmp_path):
    good = make_zip(tmp_path / "good.zip", [("cnn_trainer.py", "x = 1\n" * 1000)])
    archive = tmp_path / "hw4.zip"
    archive.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="cannot read hw4.zip"):
        stage(archive, tmp_path / "dest")


def test_zip_with_damaged_data_is_an_input_error(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [("cnn_trainer.py", "".join(f"x{i} = {i}\n" for i in range(500)))])
    data = bytearray(archive.read_bytes())
    data[60:70] = b"\xff" * 10  # inside the compressed data of the only entry
    archive.write_bytes(bytes(data))
    dest = tmp_path / "dest"

    with pytest.raises(InputError, match="damaged"):
        stage(archive, dest)
    assert_nothing_staged(dest)


def test_encrypted_entry_is_an_input_error(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [("cnn_trainer.py", "x = 1")])
    patch_entry(archive, "cnn_trainer.py", set_flags=0x1)
    with pytest.raises(InputError, match="hw4.zip is password-protected"):
        stage(archive, tmp_path / "dest")


def test_zip_names_in_utf8_without_the_flag_are_decoded(tmp_path):
    name = "r\u00e9sum\u00e9/Mod\u00e8le.py"
    archive = make_zip(tmp_path / "hw4.zip", [(name, "x = 1"), ("ascii.py", "x = 2")])
    patch_entry(archive, name, clear_flags=0x800)  # as tools that write UTF-8 but say nothing do
    with zipfile.ZipFile(archive) as zf:
        assert name not in zf.namelist()  # zipfile alone would read it as cp437

    assert stage(archive, tmp_path / "dest").files == ["ascii.py", name]


def test_zip_names_with_control_characters_are_refused(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [("bad\x1b[2J.py", "x = 1"), ("ok.py", "x = 2")])
    staged = stage(archive, tmp_path / "dest")
    assert staged.files == ["ok.py"]
    assert "\x1b" not in warnings_text(staged.notes)
    assert "control characters" in warnings_text(staged.notes)


def test_zip_duplicate_entries_keep_the_first(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [("a.py", "first = 1"), ("a.py", "second = 2")])
    staged = stage(archive, tmp_path / "dest")
    assert staged.files == ["a.py"]
    assert (staged.root / "a.py").read_text() == "first = 1"
    assert "same name" in warnings_text(staged.notes)


def test_many_refusals_are_summarised(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [(f"../e{i}.py", "x") for i in range(30)] + [("ok.py", "x")])
    staged = stage(archive, tmp_path / "dest")
    assert len(staged.notes) == 11
    assert "20 more" in staged.notes[-1].text


# ----- staging: folders and single files ---------------------------------------------------


def test_folder_symlinks_are_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("held-out labels")
    outside = write_tree(tmp_path / "outside", {"answers.py": "ANSWER = 42"})
    folder = write_tree(tmp_path / "hw4", {"cnn_trainer.py": "x = 1", "sub/notes.txt": "n"})
    (folder / "labels.txt").symlink_to(secret)
    (folder / "sub" / "answers").symlink_to(outside, target_is_directory=True)

    staged = stage(folder, tmp_path / "dest")

    assert staged.files == ["cnn_trainer.py", "sub/notes.txt"]
    assert everything_under(staged.root) == {"cnn_trainer.py", "sub", "sub/notes.txt"}
    text = warnings_text(staged.notes)
    assert "skipped labels.txt: it is a symbolic link" in text
    assert "skipped sub/answers: it is a symbolic link" in text
    assert staged.source == "hw4"


def test_folder_junk_is_ignored_and_special_files_refused(tmp_path):
    folder = write_tree(tmp_path / "hw4", {
        "cnn_trainer.py": "x = 1", "__pycache__/cnn_trainer.cpython-311.pyc": "j",
        ".ipynb_checkpoints/a.ipynb": "j", ".DS_Store": "j",
    })
    os.mkfifo(folder / "pipe")

    staged = stage(folder, tmp_path / "dest")

    assert staged.files == ["cnn_trainer.py"]
    assert "skipped pipe: it is not a regular file" in warnings_text(staged.notes)
    assert any(n.level == "info" and "ignored 3 " in n.text for n in staged.notes)


def test_folder_limits_apply(tmp_path):
    folder = write_tree(tmp_path / "hw4", {"cnn_trainer.py": "x = 1", "data/big.csv": "1," * 1000})
    dest = tmp_path / "dest"
    with pytest.raises(InputError, match="data/big.csv in the folder hw4 is larger than 1000 bytes"):
        stage(folder, dest, IntakeLimits(max_file_bytes=1000))
    assert_nothing_staged(dest)
    with pytest.raises(InputError, match="more than 1 files"):
        stage(folder, dest, IntakeLimits(max_files=1))
    assert_nothing_staged(dest)


def test_folder_holding_only_a_zip_is_unpacked(tmp_path):
    folder = tmp_path / "submission_folder"
    folder.mkdir()
    make_zip(folder / "hw4.zip", [("cnn_trainer.py", "x = 1")])
    assert stage(folder, tmp_path / "dest").files == ["cnn_trainer.py"]


def test_dest_inside_the_submission_folder_is_not_copied_into_itself(tmp_path):
    # The grader's own output folder (with an earlier run's files) is not student work.
    folder = write_tree(tmp_path / "hw4", {"cnn_trainer.py": "x = 1", "graded/earlier/log.txt": "old"})
    staged = stage(folder, folder / "graded")
    assert staged.files == ["cnn_trainer.py"]


@pytest.mark.parametrize("name", ["cnn_trainer.py", "hw3-part-AB.ipynb"])
def test_single_code_file_is_copied(tmp_path, name):
    single = tmp_path / name
    single.write_text("x = 1")
    staged = stage(single, tmp_path / "dest")
    assert staged.files == [name]
    assert (staged.root / name).read_text() == "x = 1"
    assert staged.source == name


def test_missing_path_and_other_types_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        stage(tmp_path / "nope.zip", tmp_path / "dest")
    other = tmp_path / "hw4.tar.gz"
    other.write_bytes(b"\x1f\x8b")
    with pytest.raises(InputError, match=r"cannot grade hw4.tar.gz: hand in a .zip"):
        stage(other, tmp_path / "dest")


def test_stage_refuses_to_reuse_a_staged_folder(tmp_path):
    folder = write_tree(tmp_path / "hw4", {"cnn_trainer.py": "x = 1"})
    stage(folder, tmp_path / "dest")
    with pytest.raises(FileExistsError):
        stage(folder, tmp_path / "dest")


# ----- choosing the module -----------------------------------------------------------------

ALEXNET_MODULE = """
import torch.nn as nn

class AlexNet(nn.Module):
    pass

class AlexNetLargeKernel(nn.Module):
    pass

class AlexNetAvgPooling(nn.Module):
    pass

def analyze_model_kernels():
    pass
"""


def test_renamed_module_is_chosen_by_symbols_with_a_warning(tmp_path):
    staged = staged_from(tmp_path, {
        "CNN.py": "class AlexNet: pass\nclass AlexNetAvgPooling: pass\n",
        "utils.py": "def helper(): pass\n",
    })

    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)

    assert choice.path == "CNN.py"
    assert choice.defines == ["AlexNet", "AlexNetAvgPooling"]
    assert [n.level for n in choice.notes] == ["warning"]
    assert choice.notes[0].text == ("graded CNN.py: it defines AlexNet, AlexNetAvgPooling; "
                                    "the handout names the module cnn_trainer.py")


def test_alternate_name_is_accepted_with_an_info_note(tmp_path):
    staged = staged_from(tmp_path, {"hw4/trainer.py": ALEXNET_MODULE, "hw4/plot.py": "x = 1"})

    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)

    assert choice.path == "hw4/trainer.py"
    assert choice.defines == ALEXNET_SYMBOLS
    assert [n.level for n in choice.notes] == ["info"]
    assert "trainer.py" in choice.notes[0].text and "cnn_trainer.py" in choice.notes[0].text


def test_expected_name_wins_over_a_file_defining_more(tmp_path):
    staged = staged_from(tmp_path, {
        "cnn_trainer.py": "class AlexNet: pass\n",
        "old_version.py": ALEXNET_MODULE,
    })

    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)

    assert choice.path == "cnn_trainer.py"
    assert choice.defines == ["AlexNet"]
    assert any(n.level == "warning" and n.text.startswith("also found AlexNet, AlexNetLargeKernel")
               and "old_version.py; not graded" in n.text for n in choice.notes)


def test_first_accepted_name_then_shallowest_path_wins(tmp_path):
    staged = staged_from(tmp_path, {
        "trainer.py": ALEXNET_MODULE,
        "deep/er/cnn_trainer.py": "x = 1",
        "deep/cnn_trainer.py": "x = 1",
    })
    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)
    assert choice.path == "deep/cnn_trainer.py"
    assert choice.defines == []


def test_name_match_ignores_case(tmp_path):
    staged = staged_from(tmp_path, {"CNN_Trainer.py": "x = 1", "other.py": "class AlexNet: pass"})
    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)
    assert choice.path == "CNN_Trainer.py"
    assert any("spells" in n.text for n in choice.notes)


def test_reexports_via_from_import_count(tmp_path):
    staged = staged_from(tmp_path, {
        "models.py": "class AlexNet: pass\n",
        "main.py": "from models import AlexNet, AlexNetAvgPooling as AlexNetAvgPooling\nimport os\n",
        "extra.py": "class AlexNetLargeKernel: pass\n",
    })

    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)

    assert choice.path == "main.py"
    assert choice.defines == ["AlexNet", "AlexNetAvgPooling"]
    assert "it imports AlexNet, AlexNetAvgPooling" in choice.notes[0].text


def test_definitions_rank_above_imports(tmp_path):
    staged = staged_from(tmp_path, {
        "a_reexports.py": "from b_models import AlexNet, AlexNetLargeKernel\n",
        "b_models.py": "class AlexNet: pass\nAlexNetLargeKernel = AlexNet\n",
    })
    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)
    assert choice.path == "b_models.py"
    assert any(n.level == "info" and "a_reexports.py; not graded" in n.text for n in choice.notes)


def test_only_names_bound_on_import_count(tmp_path):
    staged = staged_from(tmp_path, {
        "guarded.py": ("if __name__ == '__main__':\n    class AlexNet: pass\n"
                       "    class AlexNetLargeKernel: pass\n"
                       "def outer():\n    class AlexNetAvgPooling: pass\n"),
        "blocks.py": ("try:\n    class AlexNet: pass\nexcept ImportError:\n    pass\n"
                      "if True:\n    AlexNetTiny, analyze_model_kernels = 1, 2\n"),
    })
    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)
    assert choice.path == "blocks.py"
    assert choice.defines == ["AlexNet", "analyze_model_kernels"]
    assert not any("guarded.py" in n.text for n in choice.notes)


def test_syntax_error_file_is_still_chosen_by_name(tmp_path):
    staged = staged_from(tmp_path, {
        "cnn_trainer.py": "import torch\n\ndef broken(:\n    pass\n",
        "backup.py": "class AlexNet: pass\n",
    })

    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)

    assert choice.path == "cnn_trainer.py"
    assert choice.defines == []
    errors = [n.text for n in choice.notes if n.level == "error"]
    assert len(errors) == 1 and "syntax error at line 3" in errors[0]


def test_choose_module_never_runs_submission_code(tmp_path):
    marker = tmp_path / "ran.txt"
    staged = staged_from(tmp_path, {
        "cnn_trainer.py": f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit(0)\nclass AlexNet: pass\n",
    })
    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)
    assert choice.defines == ["AlexNet"]
    assert not marker.exists()


def test_no_python_file_is_an_input_error(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [("report.pdf", b"%PDF"), ("notes.txt", "n")])
    staged = stage(archive, tmp_path / "dest")
    with pytest.raises(InputError, match=r"^no Python file found in hw4.zip$"):
        choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)


def test_only_unrelated_python_file_is_chosen_with_a_warning(tmp_path):
    staged = staged_from(tmp_path, {"homework.py": "x = 1\n"})
    choice = choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)
    assert choice.path == "homework.py"
    assert choice.defines == []
    assert [n.level for n in choice.notes] == ["warning"]


def test_several_unrelated_python_files_are_an_input_error(tmp_path):
    staged = staged_from(tmp_path, {f"f{i}.py": "x = 1\n" for i in range(7)})
    with pytest.raises(InputError) as caught:
        choose_module(staged, MODULE_NAMES, ALEXNET_SYMBOLS)
    message = str(caught.value)
    assert "f0.py, f1.py, f2.py, f3.py, f4.py and 2 more" in message
    assert "f5.py" not in message
    assert "AlexNet, AlexNetLargeKernel, AlexNetAvgPooling, analyze_model_kernels" in message
    assert "\n" not in message


def test_zip_entry_whose_header_claims_too_much_is_refused_before_reading(tmp_path):
    archive = make_zip(tmp_path / "hw4.zip", [("weights.bin", b"\0" * 100)])
    patch_entry(archive, "weights.bin", file_size=5000)
    with pytest.raises(InputError, match="weights.bin in hw4.zip is larger than 1000 bytes"):
        stage(archive, tmp_path / "dest", IntakeLimits(max_file_bytes=1000))


def test_classes_imported_from_a_sibling_module_are_not_other_candidates(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "alexnet.py").write_text("class AlexNet:\n    pass\n")
    (folder / "cnn_trainer.py").write_text("from alexnet import AlexNet\n")
    (folder / "old_copy.py").write_text("class AlexNet:\n    pass\n")
    choice = choose_module(stage(folder, tmp_path / "dest"), ["cnn_trainer.py"], ["AlexNet"])
    assert choice.path == "cnn_trainer.py"
    texts = [n.text for n in choice.notes]
    assert "cnn_trainer.py imports AlexNet from alexnet.py" in texts
    assert "also found AlexNet in old_copy.py; not graded" in texts
    assert not any("alexnet.py; not graded" in t for t in texts)
