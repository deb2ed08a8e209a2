"""Reading a class's submissions: Gradescope exports, Canvas downloads, plain folders, rosters.

Every export is written here, in tmp_path: small made-up files, never real student code.
"""
from __future__ import annotations

import os
import textwrap
import zipfile
from pathlib import Path

import pytest

from grader.batch.gradescope_export import load_metadata
from grader.batch.inputs import assign_keys, read_export, slug
from grader.batch.records import ClassExport, Person, Submission
from grader.batch.roster import apply_roster
from grader.errors import InputError

CODE = "def forward(x):\n    return x\n"

# As Ruby's Psych writes it: colon-prefixed keys, Ruby tags, a timestamp with nanoseconds.
METADATA = textwrap.dedent("""\
    ---
    submission_101:
      :submitters:
      - :name: Alice Adams
        :sid: '1001'
        :email: alice@example.edu
      :created_at: 2023-03-01 10:00:00.123456789 -08:00
      :score: !ruby/object:BigDecimal 18:0.85E2
      :results: !ruby/hash:ActiveSupport::HashWithIndifferentAccess
        score: 85.0
        tests: []
      :history: []
    submission_102:
      :submitters:
      - :name: Bob Brown
        :sid: '2002'
        :email: bob@example.edu
      - :name: Carol Cruz
        :sid: 3003
        :email: carol@example.edu
      :created_at: 2023-03-01 11:00:00.000000000 -08:00
      :score: !ruby/object:BigDecimal 18:0.9E2
      :results: !ruby/hash:ActiveSupport::HashWithIndifferentAccess
        tests: !ruby/array:Array
        - name: shapes
      :mystery_flag: !ruby/sym shiny
    submission_103:
      :submitters:
      - :name: Alice Adams
        :sid: '1001'
        :email: alice@example.edu
      :created_at: '2023-03-02 09:30:00 UTC'
    submission_105:
      :submitters:
      - :name: Dave Diaz
        :email: dave@example.edu
      :created_at: 2023-03-01 12:00:00.000000000 -08:00
    """)
GRADESCOPE_FOLDERS = ("submission_101", "submission_102", "submission_103", "submission_104")


def gradescope_tree(top: Path, metadata: str = METADATA) -> Path:
    top.mkdir(parents=True)
    (top / "submission_metadata.yml").write_text(metadata)
    for name in GRADESCOPE_FOLDERS:
        (top / name).mkdir()
        (top / name / "hw4.py").write_text(CODE)
    return top


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def write_zip(archive: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return archive


def by_key(export: ClassExport) -> dict[str, Submission]:
    return {s.key: s for s in export.submissions}


# ----- Gradescope -------------------------------------------------------------------------


def check_gradescope(export: ClassExport) -> None:
    assert export.format == "gradescope"
    subs = by_key(export)
    assert sorted(subs) == ["1001", "2002", "dave-example.edu", "submission_104"]

    alice = subs["1001"]  # submitted twice: submission_103 is the later one
    assert alice.source == "submission_103"
    assert alice.people == (Person("1001", "Alice Adams", "alice@example.edu"),)
    assert alice.submitted_at == "2023-03-02T09:30:00+00:00"
    assert alice.path is not None and alice.path.name == "submission_103" and (alice.path / "hw4.py").is_file()
    assert any("2 submissions; the latest (submission_103, 2023-03-02T09:30:00+00:00) is graded" in n
               for n in alice.notes), alice.notes
    assert not any(s.source == "submission_101" for s in export.submissions)

    group = subs["2002"]  # one submission, two people; the numeric SID read as text
    assert [(p.id, p.name, p.email) for p in group.people] == [
        ("2002", "Bob Brown", "bob@example.edu"), ("3003", "Carol Cruz", "carol@example.edu")]
    assert group.submitted_at == "2023-03-01T11:00:00-08:00"
    assert group.path.name == "submission_102" and group.problem == ""
    assert group.notes == []  # :score:, :results: and the unknown :mystery_flag: are not needed

    dave = subs["dave-example.edu"]  # no SID: known by email; and no folder
    assert dave.people == (Person("dave@example.edu", "Dave Diaz", "dave@example.edu"),)
    assert dave.path is None
    assert "submission_105" in dave.problem and "no folder" in dave.problem

    unlisted = subs["submission_104"]  # a folder the metadata does not mention: still graded
    assert unlisted.people == (Person("submission_104"),)
    assert unlisted.path.name == "submission_104"
    assert any("has no entry for it" in n for n in unlisted.notes)


def test_gradescope_folder(tmp_path):
    top = gradescope_tree(tmp_path / "assignment_42_export")
    export = read_export(top, tmp_path / "work")
    check_gradescope(export)
    assert export.problems == []
    assert by_key(export)["1001"].path.parent == top  # a folder export is read where it is


def test_gradescope_zip_with_top_folder(tmp_path):
    top = gradescope_tree(tmp_path / "src")
    archive = zip_folder(top, tmp_path / "assignment_42_export.zip", prefix="assignment_42_export/")
    export = read_export(archive, tmp_path / "work")
    check_gradescope(export)
    alice = by_key(export)["1001"]
    assert alice.path.is_relative_to(tmp_path / "work")
    assert alice.path.parent.name == "assignment_42_export"


def test_gradescope_folder_one_level_down(tmp_path):
    gradescope_tree(tmp_path / "download" / "assignment_42_export")
    check_gradescope(read_export(tmp_path / "download", tmp_path / "work"))


def test_gradescope_tags_never_build_objects(tmp_path):
    meta = tmp_path / "submission_metadata.yml"
    meta.write_text("a: !ruby/object:BigDecimal 18:0.85E2\nb: !!python/object/apply:os.system ['touch pwned']\n"
                    "c: !ruby/hash:Foo {x: 1}\nd: !ruby/sym done\n")
    assert load_metadata(meta) == {"a": 85.0, "b": ["touch pwned"], "c": {"x": 1}, "d": "done"}


def test_gradescope_malformed_metadata_falls_back_to_folders(tmp_path):
    top = gradescope_tree(tmp_path / "export", metadata="submission_101:\n  :submitters: [\n  - oops: {\n")
    export = read_export(top, tmp_path / "work")
    assert export.format == "gradescope"
    assert len(export.problems) == 1
    assert "submission_metadata.yml cannot be used" in export.problems[0]
    assert "not valid YAML" in export.problems[0] and "graded under its folder name" in export.problems[0]
    assert sorted(by_key(export)) == list(GRADESCOPE_FOLDERS)
    sub = by_key(export)["submission_102"]
    assert sub.people == (Person("submission_102"),) and sub.path == top / "submission_102"
    assert "the metadata could not be read" in sub.notes[0]


def test_gradescope_metadata_not_a_mapping(tmp_path):
    top = gradescope_tree(tmp_path / "export", metadata="- just\n- a list\n")
    export = read_export(top, tmp_path / "work")
    assert "expected a mapping" in export.problems[0]
    assert len(export.submissions) == 4


def test_gradescope_entry_missing_keys_is_a_note(tmp_path):
    top = gradescope_tree(tmp_path / "export", metadata="submission_101: {}\nsubmission_102:\n  :score: 3\n")
    export = read_export(top, tmp_path / "work")
    sub = by_key(export)["submission_101"]
    assert sub.people == (Person("submission_101"),) and sub.submitted_at == ""
    assert any("names no submitters" in n for n in sub.notes)


def test_gradescope_group_member_who_submitted_again_alone(tmp_path):
    metadata = textwrap.dedent("""\
        submission_201:
          :submitters:
          - :name: Bob Brown
            :sid: '2002'
          - :name: Carol Cruz
            :sid: '3003'
          :created_at: 2023-03-01 10:00:00.000000000 -08:00
        submission_202:
          :submitters:
          - :name: Carol Cruz
            :sid: '3003'
          :created_at: 2023-03-01 11:00:00.000000000 -08:00
        submission_203:
          :submitters:
          - :name: Bob Brown
            :sid: '2002'
          :created_at: 2023-02-28
        """)
    top = tmp_path / "export"
    top.mkdir()
    (top / "submission_metadata.yml").write_text(metadata)
    for name in ("submission_201", "submission_202", "submission_203"):
        (top / name).mkdir()
    os.symlink(tmp_path, top / "submission_204")
    export = read_export(top, tmp_path / "work")
    subs = {s.source: s for s in export.submissions}
    assert sorted(subs) == ["submission_201", "submission_202"]  # 203 is Bob's earlier one: dropped
    group = subs["submission_201"]
    assert [p.id for p in group.people] == ["2002"]  # Carol's later, own submission counts for her
    assert "graded for Bob Brown only; Carol Cruz submitted again later" in group.notes
    assert "2 submissions; the latest (submission_201, 2023-03-01T10:00:00-08:00) is graded" in group.notes
    assert subs["submission_202"].notes == [
        "2 submissions; the latest (submission_202, 2023-03-01T11:00:00-08:00) is graded"]
    assert export.problems == ["not graded, symbolic links are not followed: submission_204"]


# ----- Canvas -----------------------------------------------------------------------------

CANVAS_FILES = {
    "smithbob_1001_5001_hw4.py": "# first upload\n",
    "smithbob_1001_5002_hw4-1.py": CODE,  # the same file uploaded again
    "smithbob_1001_5003_utils.py": CODE,
    "jonesamy_LATE_1002_5004_hw4.ipynb": "{}",
    "jonesamy_LATE_1002_text.html": "<p>see my notebook</p>",
    "anon_x7Yq2_5005_hw4.py": CODE,
    "leecho_1003_text.html": "<p>my answer is 42</p>",
    "müllerjürgen_1004_5006_übung_4.py": CODE,
    "notes.txt": "not from Canvas",
}


def check_canvas(export: ClassExport) -> None:
    assert export.format == "canvas"
    subs = {s.people[0].id: s for s in export.submissions}
    assert sorted(subs) == ["1001", "1002", "1003", "1004", "anon_x7Yq2"]
    assert len(export.problems) == 1 and "notes.txt" in export.problems[0]
    assert "not named as Canvas names submissions" in export.problems[0]

    bob = subs["1001"]
    assert bob.key == "1001" and bob.people[0].name == "smithbob" and not bob.late
    assert sorted(p.name for p in bob.path.iterdir()) == ["hw4.py", "utils.py"]
    assert (bob.path / "hw4.py").read_text() == CODE  # the later upload (attachment 5002) wins
    assert any("smithbob_1001_5001_hw4.py is superseded by the later upload smithbob_1001_5002_hw4-1.py" in n
               for n in bob.notes), bob.notes

    amy = subs["1002"]
    assert amy.late and amy.people[0].name == "jonesamy"
    assert [p.name for p in amy.path.iterdir()] == ["hw4.ipynb"]
    assert any("also submitted a text entry (jonesamy_LATE_1002_text.html)" in n for n in amy.notes)

    anon = subs["anon_x7Yq2"]
    assert anon.people == (Person("anon_x7Yq2", ""),) and anon.key == "anon_x7Yq2"
    assert (anon.path / "hw4.py").is_file()

    cho = subs["1003"]
    assert cho.path is None and "submitted a text entry, not files" in cho.problem and cho.notes == []

    jurgen = subs["1004"]
    assert jurgen.people[0].name == "müllerjürgen"
    assert [p.name for p in jurgen.path.iterdir()] == ["übung_4.py"]


def test_canvas_zip(tmp_path):
    archive = write_zip(tmp_path / "submissions.zip", CANVAS_FILES)
    export = read_export(archive, tmp_path / "work")
    check_canvas(export)
    assert all(s.path is None or s.path.is_relative_to(tmp_path / "work") for s in export.submissions)


def test_canvas_folder_is_copied_not_moved(tmp_path):
    src = tmp_path / "submissions"
    src.mkdir()
    for name, text in CANVAS_FILES.items():
        (src / name).write_text(text)
    (tmp_path / "secret.py").write_text("TOKEN = 1\n")
    os.symlink(tmp_path / "secret.py", src / "evilbob_1009_5999_hw4.py")  # a link is never followed
    export = read_export(src, tmp_path / "work")
    assert [p for p in export.problems if "symbolic link" in p] == [
        "not graded, symbolic links are not followed: evilbob_1009_5999_hw4.py"]
    export.problems = [p for p in export.problems if "symbolic link" not in p]
    check_canvas(export)
    assert sorted(p.name for p in src.iterdir()) == sorted([*CANVAS_FILES, "evilbob_1009_5999_hw4.py"])


def test_canvas_needs_most_files_to_follow_the_convention(tmp_path):
    src = tmp_path / "class"
    src.mkdir()
    (src / "smithbob_1001_5001_hw4.py").write_text(CODE)
    for name in ("alice.py", "bob.py", "carol.py"):
        (src / name).write_text(CODE)
    export = read_export(src, tmp_path / "work")
    assert export.format == "folders" and len(export.submissions) == 4


# ----- plain folders ----------------------------------------------------------------------


def test_plain_folder_export(tmp_path):
    src = tmp_path / "hw4"
    (src / "alice").mkdir(parents=True)
    (src / "alice" / "hw4.py").write_text(CODE)
    write_zip(src / "bob.zip", {"hw4/hw4.py": CODE})
    (src / "carol.py").write_text(CODE)
    (src / "dave.ipynb").write_text("{}")
    (src / "frank.zip").write_bytes(b"PK\x03\x04 this is not really a zip")  # graded later; reported then
    (src / "grades.csv").write_text("x")
    (src / ".DS_Store").write_bytes(b"\0")
    (src / "__MACOSX").mkdir()
    os.symlink(tmp_path, src / "eve")
    export = read_export(src, tmp_path / "work")
    assert export.format == "folders"
    subs = by_key(export)
    assert sorted(subs) == ["alice", "bob", "carol", "dave", "frank"]
    assert subs["alice"].path == src / "alice" and subs["bob"].path == src / "bob.zip"
    assert subs["carol"].path == src / "carol.py" and subs["dave"].path == src / "dave.ipynb"
    assert subs["frank"].path == src / "frank.zip" and subs["frank"].problem == ""
    assert subs["dave"].people == (Person("dave"),) and subs["dave"].source == "dave.ipynb"
    assert export.problems == ["not graded, symbolic links are not followed: eve",
                               "not graded, expected a folder, .zip, .ipynb or .py per student: grades.csv"]


def test_plain_zip_with_wrapper_folder_and_two_entries_for_one_student(tmp_path):
    archive = write_zip(tmp_path / "class.zip", {"hw4/alice/hw4.py": CODE, "hw4/alice.py": CODE,
                                                 "hw4/bob.py": CODE})
    export = read_export(archive, tmp_path / "work")
    subs = by_key(export)
    assert sorted(subs) == ["alice", "bob"]
    assert subs["alice"].path.is_dir() and subs["alice"].path.name == "alice"
    assert subs["alice"].notes == ["2 entries for alice; graded alice, not alice.py"]


def test_class_zip_entries_that_escape_are_left_out(tmp_path):
    archive = write_zip(tmp_path / "class.zip", {"alice.py": CODE, "../evil.py": CODE, "/etc/x.py": CODE})
    export = read_export(archive, tmp_path / "work")
    assert sorted(by_key(export)) == ["alice"]
    assert export.problems == [
        "reading class.zip: skipped ../evil.py: its path leads outside the submission folder (..)",
        "reading class.zip: skipped /etc/x.py: it has an absolute path"]
    assert not (tmp_path / "evil.py").exists()


def test_class_zip_holding_one_zip_only(tmp_path):
    inner = write_zip(tmp_path / "inner.zip", {"hw4.py": CODE}).read_bytes()
    archive = write_zip(tmp_path / "submissions.zip", {"smithbob_1001_5001_hw4.zip": inner})
    export = read_export(archive, tmp_path / "work")
    assert export.submissions == []
    assert "holds a single zip and no code; extract it and give the folder instead" in export.problems[0]


def test_empty_exports(tmp_path):
    (tmp_path / "empty").mkdir()
    export = read_export(tmp_path / "empty", tmp_path / "work")
    assert export.submissions == [] and export.problems == ["the class export empty holds no submissions"]
    export = read_export(write_zip(tmp_path / "empty.zip", {}), tmp_path / "work")
    assert export.submissions == [] and export.problems == ["the class export empty.zip holds no submissions"]


def test_corrupt_class_zip_is_a_problem_not_a_crash(tmp_path):
    good = write_zip(tmp_path / "good.zip", {f"student{i}.py": CODE * 50 for i in range(5)}).read_bytes()
    (tmp_path / "truncated.zip").write_bytes(good[: len(good) // 2])
    export = read_export(tmp_path / "truncated.zip", tmp_path / "work")
    assert export.submissions == []
    assert len(export.problems) == 1 and export.problems[0].startswith("cannot read the class export truncated.zip")


def test_rerun_replaces_the_earlier_extraction(tmp_path):
    archive = write_zip(tmp_path / "class.zip", {"alice.py": CODE})
    first = read_export(archive, tmp_path / "work").submissions[0].path
    second = read_export(archive, tmp_path / "work").submissions[0].path
    assert second.is_file() and not first.exists()
    again = read_export(second.parent, tmp_path / "work")  # an export inside an earlier one is kept
    assert again.submissions[0].path == second and second.is_file()


def test_missing_source_raises(tmp_path):
    with pytest.raises(InputError, match="class export not found"):
        read_export(tmp_path / "nowhere.zip", tmp_path / "work")


def test_neither_folder_nor_zip(tmp_path):
    (tmp_path / "grades.csv").write_text("x")
    export = read_export(tmp_path / "grades.csv", tmp_path / "work")
    assert export.submissions == [] and "expected a folder or a .zip" in export.problems[0]


# ----- keys -------------------------------------------------------------------------------


def test_slug_is_safe_and_readable():
    assert slug("1001") == "1001" and slug("alice@example.edu") == "alice-example.edu"
    assert slug("Jürgen Müller") == "Jurgen-Muller" and slug("Straße") == "Strasse"
    assert slug("..") .startswith("id-") and slug("") .startswith("id-")
    assert slug(".hidden") == "hidden" and slug("../../etc/passwd") == "etc-passwd"
    assert slug("CON") == "CON_" and slug("gradebook.csv") == "gradebook.csv_"
    chinese, other = slug("李雷"), slug("王芳")
    assert chinese.startswith("id-") and chinese != other and chinese == slug("李雷")
    assert slug("李lei").startswith("lei-") and slug("李lei") != "lei"
    assert len(slug("x" * 500)) <= 64 + 9
    for s in (slug("a/b\\c\0d"), slug("ü" * 3), slug("-.-")):
        assert all(c.isascii() and (c.isalnum() or c in "-_.") for c in s) and not s.startswith(".")


def test_keys_are_unique_ignoring_case_and_stable():
    def subs():
        return [Submission("", (Person(i),), None, source=src)
                for i, src in (("alice", "alice.py"), ("Alice", "Alice"), ("bob", "bob"), ("alice", "alice"))]

    first, second = subs(), subs()
    assign_keys(first)
    assign_keys(list(reversed(second)))
    assert sorted(s.key for s in first) == ["Alice", "alice-2", "alice-3", "bob"]
    assert [s.key for s in first] == [s.key for s in second]


# ----- rosters ----------------------------------------------------------------------------


def test_roster_gradescope_layout_by_id_and_email(tmp_path):
    export = read_export(gradescope_tree(tmp_path / "export"), tmp_path / "work")
    roster = tmp_path / "roster.csv"
    roster.write_text("First Name,Last Name,SID,Email,Role\n"
                      "Alice,Adams,1001,alice@example.edu,Student\n"
                      "Bob,Brown,9999,BOB@Example.edu,Student\n"  # a different SID: matched by email
                      "Carol,Cruz,3003,,Student\n"
                      "Dave,Diaz,4004,dave@example.edu,Student\n"
                      "Erin,Evans,5005,erin@example.edu,Student\n"
                      "Erin,Again,5005,erin2@example.edu,Student\n"
                      "Tina,Teacher,,tina@example.edu,Instructor\n"
                      "Tom,Assistant,7007,tom@example.edu,TA\n")
    apply_roster(export, roster)
    subs = by_key(export)
    group = subs["2002"]
    assert [p.id for p in group.people] == ["2002", "3003"]
    assert not any("not on the roster" in n for n in group.notes)
    assert export.missing == [Person("5005", "Erin Evans", "erin@example.edu")]
    assert export.problems == ["roster roster.csv: the id 5005 is on row 6 and row 7; row 6 is used"]
    assert subs["submission_104"].notes[-1] == "submission_104 is not on the roster roster.csv"


def test_roster_canvas_gradebook_fills_names(tmp_path):
    export = read_export(write_zip(tmp_path / "submissions.zip", CANVAS_FILES), tmp_path / "work")
    roster = tmp_path / "gradebook.csv"
    roster.write_text('\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,HW4 (5012)\n'
                      '    Points Possible,,,,,100\n'
                      '"Smith, Bob",1001,S1,bsmith,Sec 1,\n'
                      '"Jones, Amy",1002,S2,ajones,Sec 1,\n'
                      '"Müller, Jürgen",,S4,jmuller,Sec 1,\n'  # no Canvas ID here: matched by name
                      '"Nguyen, Pat",1005,S5,pnguyen,Sec 1,\n'
                      '"Student, Test",1099,,,,\n', encoding="utf-8")
    apply_roster(export, roster)
    subs = {s.people[0].id: s for s in export.submissions}
    assert subs["1001"].people == (Person("1001", "Smith, Bob", ""),)
    assert subs["1004"].people[0].name == "Müller, Jürgen"
    assert any("leecho (1003) is not on the roster" in n for n in subs["1003"].notes)
    assert any("anon_x7Yq2 is not on the roster" in n for n in subs["anon_x7Yq2"].notes)
    assert export.missing == [Person("1005", "Nguyen, Pat", "")]


def test_roster_plain_folders_by_login_and_email(tmp_path):
    src = tmp_path / "class"
    src.mkdir()
    for name in ("asmith", "bob@example.edu", "stranger"):
        (src / f"{name}.py").write_text(CODE)
    export = read_export(src, tmp_path / "work")
    roster = tmp_path / "roster.csv"
    roster.write_text("name;login;e-mail\nAnn Smith;asmith;ann@example.edu\nBob B;bb;Bob@example.edu\n"
                      "Cy C;cc;cy@example.edu\n")
    apply_roster(export, roster)
    subs = by_key(export)
    assert subs["asmith"].people == (Person("asmith", "Ann Smith", "ann@example.edu"),)
    assert subs["bob-example.edu"].people == (Person("bob@example.edu", "Bob B", "Bob@example.edu"),)
    assert subs["stranger"].notes == ["stranger is not on the roster roster.csv"]
    assert export.missing == [Person("cc", "Cy C", "cy@example.edu")]


def test_roster_without_id_column_is_an_input_error(tmp_path):
    export = ClassExport("folders", [])
    roster = tmp_path / "roster.csv"
    roster.write_text("Name,Email\nAlice,alice@example.edu\n")
    with pytest.raises(InputError, match=r"roster.csv has no student id column.*found Name, Email"):
        apply_roster(export, roster)
    with pytest.raises(InputError, match="cannot read the roster"):
        apply_roster(export, tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="no student id column"):
        apply_roster(export, tmp_path / "empty.csv")
