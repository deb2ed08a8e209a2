"""The HTML report and the terminal summary, rendered from hand-built GradeReports."""
from __future__ import annotations

import base64
import html as htmllib
import re
import struct
import zlib
from html.parser import HTMLParser

import jinja2
import pytest

from grader.render import html as html_render
from grader.render.html import render_html
from grader.render.terminal import summary
from grader.results import Artifact, CheckResult, GradeReport, Status

HOSTILE = "<script>alert(1)</script>"
ATTR_HOSTILE = '" onmouseover="alert(2)'


# --------------------------------------------------------------------------- builders


def make_png(width: int = 4, height: int = 3, pixel=None) -> bytes:
    """A valid RGB PNG made with the standard library only."""
    pixel = pixel or (lambda x, y: ((x * 60) % 256, (y * 80) % 256, 128))
    raw = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def kernel_mosaic(seed: int, rows: int = 6, cols: int = 8, size: int = 11) -> bytes:
    """A deterministic stand-in for a grid of learned conv1 kernels."""
    import math

    gap = 1
    width, height = cols * (size + gap) + gap, rows * (size + gap) + gap

    def pixel(x: int, y: int):
        cx, cy = x // (size + gap), y // (size + gap)
        kx, ky = x % (size + gap) - gap, y % (size + gap) - gap
        if kx < 0 or ky < 0:
            return (255, 255, 255)
        k = cy * cols + cx + seed * 17
        angle = (k * 0.7) % math.pi
        freq = 0.5 + (k % 5) * 0.25
        v = math.cos(freq * (kx * math.cos(angle) + ky * math.sin(angle)))
        g = math.exp(-((kx - 5) ** 2 + (ky - 5) ** 2) / 18)
        base = (math.sin(k), math.sin(k * 1.3 + 2), math.sin(k * 0.7 + 4))
        return tuple(int(max(0, min(255, 128 + 120 * g * v * (0.6 + 0.4 * b)))) for b in base)

    return make_png(width, height, pixel)


def layer(name, type_, attrs, shape, params):
    return {"name": name, "type": type_, "attrs": attrs, "shape": shape, "params": params}


def found(type_, attrs, shape, params, where):
    return {"type": type_, "attrs": attrs, "shape": shape, "params": params, "where": where}


def alexnet_table(hostile: bool = False) -> dict:
    """A failed architecture diff: matches, a mismatch, an equivalent row, a missing and an extra layer."""
    w = "cnn_trainer.py"
    rows = [
        {"status": "match", "expected": layer("Conv2d-1", "Conv2d", "11 x 11, stride 4, pad 2", "[-1, 96, 55, 55]", 34944),
         "found": found("Conv2d", "11 x 11, stride 4, pad 2", "[-1, 96, 55, 55]", 34944, f"{w}:88 (features.0)"), "note": ""},
        {"status": "match", "expected": layer("ReLU-2", "ReLU", "", "[-1, 96, 55, 55]", 0),
         "found": found("ReLU", "", "[-1, 96, 55, 55]", 0, f"{w}:89 (features.1)"), "note": ""},
        {"status": "match", "expected": layer("MaxPool2d-3", "MaxPool2d", "3 x 3, stride 2", "[-1, 96, 27, 27]", 0),
         "found": found("MaxPool2d", "3 x 3, stride 2", "[-1, 96, 27, 27]", 0, f"{w}:90 (features.2)"), "note": ""},
        {"status": "mismatch", "expected": layer("Conv2d-4", "Conv2d", "5 x 5, pad 2", "[-1, 256, 27, 27]", 614656),
         "found": found("Conv2d", "3 x 3, pad 1", "[-1, 256, 27, 27]", 221440, f"{w}:91 (features.3)"),
         "note": "kernel size differs (and so the parameter count)"},
        {"status": "match", "expected": layer("ReLU-5", "ReLU", "", "[-1, 256, 27, 27]", 0),
         "found": found("ReLU", "", "[-1, 256, 27, 27]", 0, f"{w}:92 (features.4)"), "note": ""},
        {"status": "equivalent", "expected": layer("MaxPool2d-6", "MaxPool2d", "3 x 3, stride 2", "[-1, 256, 13, 13]", 0),
         "found": found("MaxPool2d", "kernel_size=3, stride=2", "[-1, 256, 13, 13]", 0, f"{w}:93 (features.5)"),
         "note": "same layer, written with keyword arguments"},
        {"status": "match", "expected": layer("Conv2d-7", "Conv2d", "3 x 3, pad 1", "[-1, 384, 13, 13]", 885120),
         "found": found("Conv2d", "3 x 3, pad 1", "[-1, 384, 13, 13]", 885120, f"{w}:94 (features.6)"), "note": ""},
        {"status": "missing", "expected": layer("ReLU-8", "ReLU", "", "[-1, 384, 13, 13]", 0), "found": None,
         "note": "no activation after features.6"},
        {"status": "match", "expected": layer("Conv2d-9", "Conv2d", "3 x 3, pad 1", "[-1, 256, 13, 13]", 884992),
         "found": found("Conv2d", "3 x 3, pad 1", "[-1, 256, 13, 13]", 884992, f"{w}:95 (features.7)"), "note": ""},
        {"status": "extra", "expected": None,
         "found": found("Dropout", "p=0.5", "[-1, 256, 13, 13]", 0, f"{w}:96 (features.8)"),
         "note": "not in the Part A table"},
        {"status": "mismatch", "expected": layer("Linear-10", "Linear", "9216 \u2192 4096", "[-1, 4096]", 37752832),
         "found": found("Linear", "9216 \u2192 4096", "[-1, 4096]", 37752832, f"{w}:104 (classifier.1)"), "note": ""},
        {"status": "mismatch", "expected": layer("Linear-11", "Linear", "4096 \u2192 7", "[-1, 7]", 28679),
         "found": found("Linear", "4096 \u2192 10", "[-1, 10]", 40970, f"{w}:107 (classifier.4)"),
         "note": "the output layer needs num_classes=7 units"},
    ]
    # Row 11 is a mismatch whose visible fields agree: it must still show, with no cell marked.
    if hostile:
        rows.append({"status": "mismatch", "expected": layer(HOSTILE, HOSTILE, HOSTILE, HOSTILE, HOSTILE),
                     "found": found(HOSTILE + "x", ATTR_HOSTILE, HOSTILE, 5, HOSTILE), "note": HOSTILE})
    return {"title": "AlexNet (7 classes) vs the Part A table" + (HOSTILE if hostile else ""), "rows": rows}


def check(check_id, name, part, number, max_points, points, status, **kw) -> CheckResult:
    return CheckResult(check_id=check_id, name=name, part=part, number=number, max_points=max_points,
                       points=points, status=status, **kw)


def build_example_report() -> GradeReport:
    """A realistic report: passed, failed and manual checks, a layer diff, kernel images, notes."""
    P, F, M = Status.PASSED, Status.FAILED, Status.MANUAL
    checks = [
        check("alexnet.imports", "cnn_trainer.py imports and defines AlexNet", "A", "1.1", 1, 1, P, seconds=1.9, peak_mb=412),
        check("alexnet.forward.nc7", "AlexNet(7) maps a [2, 3, 224, 224] batch to [2, 7] logits", "A", "1.2", 2, 2, P),
        check("alexnet.architecture.nc7", "AlexNet (7 classes): layers match the Part A table", "A", "1.3", 4, 1.5, F,
              message="4 of 12 rows differ from the Part A table:\n"
                      "  Conv2d-4: attrs 5 x 5, pad 2 expected, found 3 x 3, pad 1\n"
                      "  ReLU-8: missing\n  Dropout (features.8): not in the table\n"
                      "  Linear-11: 4096 \u2192 7 expected, found 4096 \u2192 10",
              hint="Compare your nn.Sequential in cnn_trainer.py with the table in Part A of the handout; "
                   "the last Linear layer should use num_classes.",
              details={"table": alexnet_table()}, seconds=2.4, peak_mb=655),
        check("alexnet.params.nc7", "AlexNet (7 classes): 57,044,810 trainable parameters", "A", "1.4", 1, 1, P),
        check("train.loss_decreases", "Training loss decreases over 20 steps", "B", "2.1", 3, 3, P, seconds=14.2, peak_mb=1930),
        check("train.eval_mode", "Evaluation uses model.eval() and torch.no_grad()", "B", "2.2", 2, 2, P),
        check("train.checkpoint", "Checkpoint saved and reloaded with identical outputs", "B", "2.3", 2, 2, P,
              visibility="after_due_date"),
        check("kernels.saved", "conv1 kernels visualised and saved as PNG", "C", "3.1", 2, 2, P,
              details={"images": ["kernels_before", "kernels_after"]}),
        check("kernels.normalised", "Kernel images are min-max normalised per kernel", "C", "3.2", 2, 2, P,
              visibility="hidden"),
        check("written.q1", "Q1: why do the learned conv1 kernels look like edge detectors?", "D", "4.1", 0, 0, M,
              message="Graded by course staff from your PDF write-up.", details={"manual_points": 4}),
        check("written.q2", "Q2: effect of removing the ReLU after conv3", "D", "4.2", 0, 0, M,
              details={"manual_points": 2}),
    ]
    report = GradeReport(
        assignment="cs1678-hw4",
        title="CS 1678 Homework 4: Convolutional Neural Networks",
        submission="alice_hw4.zip",
        checks=checks,
        graded_files=["cnn_trainer.py", "alexnet_kernels.py"],
        student_output="Epoch 1/2\n" + "\r".join(f"train  {i:3d}%|{'#' * (i // 10):<10}|" for i in range(0, 101, 20))
        + "\nloss 1.9457  acc 0.214\nEpoch 2/2\nloss 1.6211  acc 0.377\n\x1b[33mWarning: lr scheduler step before optimizer\x1b[0m\nsaved kernels to kernels.png\n",
        environment={"python": "3.11.7", "torch": "2.4.1+cpu", "torchvision": "0.19.1", "device": "cpu", "worker timeout": "600 s"},
        artifacts={
            "kernels_before": Artifact("image/png", kernel_mosaic(0), "conv1 kernels before training (first 48 of 96)"),
            "kernels_after": Artifact("image/png", kernel_mosaic(3), "conv1 kernels after 20 steps"),
        },
        seconds=41.7,
    )
    report.note("info", "Graded with the reference AlexNet from the Part A table (7 classes).")
    report.note("warning", "cnn_trainer.py downloads data at import time; the grader used its local copy instead.")
    return report


def hostile_report() -> GradeReport:
    report = GradeReport(
        assignment=HOSTILE,
        title="Title " + HOSTILE,
        submission="sub " + HOSTILE,
        graded_files=[HOSTILE + ".py"],
        checks=[
            check("evil." + HOSTILE, "Name " + HOSTILE, HOSTILE, "1" + HOSTILE, 2, 0, Status.FAILED,
                  message="Message " + HOSTILE + "\nsecond line", hint="Hint " + HOSTILE,
                  visibility=HOSTILE, details={"table": alexnet_table(hostile=True), "images": [HOSTILE, "img"]}),
        ],
        student_output="out " + HOSTILE + "\n</pre></details>" + HOSTILE,
        environment={HOSTILE: HOSTILE},
        artifacts={"img": Artifact("image/png", make_png(), "Caption " + HOSTILE + ATTR_HOSTILE)},
        grader_error="Error " + HOSTILE,
    )
    report.note("error", "Note " + HOSTILE)
    return report


# --------------------------------------------------------------------------- HTML parsing


class _LayerRows(HTMLParser):
    """Each row of each layer table: (row class, [(cell classes, cell text)])."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, list[tuple[set[str], str]]]] = []
        self._in_table = self._in_body = False
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "layers" in (a.get("class") or "").split():
            self._in_table = True
        elif self._in_table and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append((a.get("class") or "", []))
        elif self._in_body and tag == "td":
            self._cell = [set((a.get("class") or "").split()), ""]

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1][1].append((self._cell[0], self._cell[1].strip()))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def layer_rows(page: str):
    parser = _LayerRows()
    parser.feed(page)
    return parser.rows


def cells(row, kind: str) -> dict[str, tuple[set[str], str]]:
    """A row's expected ("exp") or found ("found") cells by field."""
    out = {}
    for classes, text in row[1]:
        if kind in classes:
            field = next((f for f in ("name", "type", "attrs", "shape", "params", "absent") if f in classes), "?")
            out[field] = (classes, text)
    return out


# --------------------------------------------------------------------------- HTML tests


def test_environment_is_strict_and_autoescaping():
    env = html_render.environment()
    assert env.undefined is jinja2.StrictUndefined
    template = env.get_template(html_render.TEMPLATE_NAME)
    assert template.render(r=html_render._report_view(GradeReport("a", "t", "s"))).startswith("<!DOCTYPE html>")
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_hostile_strings_are_escaped_everywhere():
    page = render_html(hostile_report())
    assert "<script" not in page.lower()  # the page has no scripts of its own either
    assert "</script>" not in page.lower()
    assert 'onmouseover="alert' not in page
    assert "&lt;/pre&gt;&lt;/details&gt;" in page  # cannot close the output block early
    escaped = htmllib.escape(HOSTILE)
    # Every place the hostile string went in comes out escaped: title, meta, check, table, notes, output...
    assert page.count(escaped) >= 20
    for where in ("Title ", "sub ", "Name ", "Message ", "Hint ", "Note ", "Error ", "out ", "Caption "):
        assert where + escaped in page, where


def test_minimal_report_renders_under_strict_undefined():
    page = render_html(GradeReport(assignment="hw0", title="Empty", submission="nobody"))
    assert "No checks were run." in page
    assert '<span class="score-num">0</span> <span class="score-max">/ 0</span>' in page
    assert "The submission printed nothing." in page
    assert "Self-check" not in page and "Grader error" not in page and "graded by course staff" not in page


def test_example_report_header_score_and_summary():
    report = build_example_report()
    page = render_html(report)
    assert report.score == 16.5 and report.max_score == 19
    assert '<span class="score-num">16.5</span> <span class="score-max">/ 19</span>' in page
    assert "+ 6 points graded by course staff, pending" in page
    for text in ("CS 1678 Homework 4: Convolutional Neural Networks", "alice_hw4.zip", "cs1678-hw4",
                 "<code>cnn_trainer.py</code>", "<code>alexnet_kernels.py</code>"):
        assert text in page
    assert "Self-check" not in page
    assert page == render_html(report)  # reproducible: nothing time-dependent


def test_checks_show_status_points_ids_message_hint_and_visibility():
    page = render_html(build_example_report())
    assert page.count('class="check check-passed"') == 8
    assert page.count('class="check check-failed"') == 1
    assert page.count('class="check check-manual"') == 2
    assert "Manual, pending" in page and "Failed</span>" in page and "Passed</span>" in page
    assert "1.5 / 4 <span" in page  # the failed check's points
    assert "\u2014 / 4 <span" in page  # manual: not graded yet, out of its staff points
    assert "<code>alexnet.architecture.nc7</code>" in page
    # newlines in messages are kept (and shown by white-space: pre-wrap)
    assert "4 of 12 rows differ from the Part A table:\n  Conv2d-4:" in page
    assert "white-space: pre-wrap" in page
    assert "<strong>Hint:</strong> Compare your nn.Sequential" in page
    assert "shown to students after the due date" in page and "hidden from students" in page
    assert page.count('<span class="tag">') == 2  # only the two checks that are not plainly visible


def test_checks_grouped_by_part_in_first_seen_order():
    checks = [
        check("b1", "B one", "B", "1", 1, 1, Status.PASSED),
        check("a1", "A one", "A", "2", 1, 0, Status.FAILED),
        check("b2", "B two", "B", "3", 1, 1, Status.PASSED),
        check("x", "No part", "", "4", 1, 1, Status.PASSED),
    ]
    page = render_html(GradeReport("hw", "T", "s", checks=checks))
    b, a, other = page.index('id="part-B"'), page.index('id="part-A"'), page.index('id="part-other"')
    assert b < a < other
    assert b < page.index("B two") < a  # B's second check stays with part B
    assert "Other checks" in page


def test_layer_table_every_row_colored_and_differing_cells_marked():
    report = build_example_report()
    table = report.checks[2].details["table"]
    page = render_html(report)
    rows = layer_rows(page)
    assert len(rows) == len(table["rows"])  # nothing hidden, matches included
    assert [r[0] for r in rows] == ["row-" + r["status"] for r in table["rows"]]
    for (row_class, row_cells), spec in zip(rows, table["rows"]):
        assert row_cells[1][1].startswith(spec["status"].capitalize(), 2)  # status as text, not colour alone
        assert row_cells[1][1].endswith(spec["note"])  # the row's note sits under its status

    mismatch = rows[3]  # Conv2d-4: attrs and params differ, type and shape agree
    exp, fnd = cells(mismatch, "exp"), cells(mismatch, "found")
    assert {f for f, (c, _) in fnd.items() if "diff" in c} == {"attrs", "params"}
    assert {f for f, (c, _) in exp.items() if "diff" in c} == {"attrs", "params"}
    assert exp["params"][1] == "614,656" and fnd["params"][1].endswith("221,440")
    assert fnd["attrs"][1] == "differs: 3 x 3, pad 1"  # screen readers hear it too
    assert "cnn_trainer.py:91 (features.3)" in fnd["type"][1]

    for row in (rows[0], rows[10]):  # a match, and a mismatch whose shown fields agree
        assert not any("diff" in c for c, _ in row[1])
    assert cells(rows[0], "exp")["params"][1] == "34,944" and rows[0][1][5][1] == "34,944"
    assert {f for f, (c, _) in cells(rows[11], "found").items() if "diff" in c} == {"attrs", "shape", "params"}
    assert "37,752,832" in page

    missing, extra = rows[7], rows[9]
    assert cells(missing, "found")["absent"][1] == "not found"
    assert cells(missing, "exp")["name"][1] == "ReLU-8"
    assert cells(extra, "exp")["absent"][1] == "not expected"
    assert cells(extra, "found")["type"][1] == "Dropoutcnn_trainer.py:96 (features.8)"
    equivalent = cells(rows[5], "found")
    # An equivalent row is right even where it is written differently: nothing is marked.
    assert "diff" not in equivalent["attrs"][0] and rows[5][0] == "row-equivalent"
    for status in ("mismatch", "missing", "extra", "equivalent", "match"):
        assert f".row-{status}" in page or status == "match"


def test_layer_table_with_hostile_cells_keeps_the_row():
    page = render_html(hostile_report())
    rows = layer_rows(page)
    assert len(rows) == len(alexnet_table(hostile=True)["rows"])
    last = rows[-1]
    assert cells(last, "exp")["name"][1] == HOSTILE  # parsed text: it arrived as text, not markup
    assert "diff" in cells(last, "found")["type"][0]


def test_images_embedded_as_data_uris_and_other_media_not():
    png = make_png(5, 4)
    report = GradeReport(
        "hw", "T", "s",
        checks=[check("k", "Kernels", "C", "1", 1, 1, Status.PASSED,
                      details={"images": ["png", "svg", "broken", "absent"]})],
        artifacts={
            "png": Artifact("image/png", png, "tiny kernel"),
            "svg": Artifact("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "vector"),
            "broken": Artifact("image/png", b"not a png", "broken one"),
            "loose": Artifact("image/png", make_png(2, 2), "not referenced by any check"),
        },
    )
    page = render_html(report)
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    assert 'width="5" height="4"' in page
    assert "<figcaption>tiny kernel</figcaption>" in page
    assert page.count("<img ") == 2  # the referenced PNG and the unreferenced one, nothing else
    assert "Not embedded: image/svg+xml is not an image/png." in page and "<svg" not in page
    assert "not a readable PNG image" in page
    assert "This image was not produced." in page
    assert "Other figures" in page and "not referenced by any check" in page


def test_page_is_self_contained():
    page = render_html(build_example_report())
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url.startswith(("data:image/png;base64,", "#")), url
    for forbidden in ("<link", "<script", "@import", "url(", "http://", "https://", "<iframe", "<object"):
        assert forbidden not in page, forbidden
    assert page.count("<style>") == 1


def test_banners_notes_and_self_check():
    report = build_example_report()
    report.self_check = True
    report.hidden_checks = 14
    report.grader_error = "worker exited with signal 9 (out of memory)\nwhile running alexnet.architecture"
    report.note("error", "No file named cnn_trainer.py in the upload.")
    page = render_html(report)
    assert "Self-check: public checks only" in page
    assert "14 more checks run at grading time" in page
    assert "Grader error: grading did not finish" in page
    assert "worker exited with signal 9 (out of memory)\nwhile running alexnet.architecture" in page
    assert page.index("Grader error") < page.index('class="summary"')
    for level, label in (("info", "Note"), ("warning", "Warning"), ("error", "Error")):
        assert f'<li class="note note-{level}"><span class="note-label">{label}:</span>' in page
    assert ".note-info" in page and ".note-warning" in page and ".note-error" in page


def test_student_output_collapsed_and_cleaned_and_environment_listed():
    page = render_html(build_example_report())
    out = page[page.index('<pre class="console">'):]
    out = out[: out.index("</pre>")]
    assert "<details>" in page and page.index("<details>") < page.index('<pre class="console">')
    assert "\x1b" not in page  # ANSI colour codes dropped
    assert "Warning: lr scheduler step before optimizer" in out
    assert "train  100%|##########|" in out and "train   20%" not in out  # progress bar as a terminal shows it
    assert "<th scope=\"row\">torch</th><td><code>2.4.1+cpu</code></td>" in page


def test_unknown_and_malformed_details_do_not_crash():
    odd = [
        {"foo": object(), "images": "not-a-list", "table": "not-a-dict"},
        {"table": {"rows": [None, 7, {"status": "weird"}, {"status": "mismatch", "expected": {"name": "X"}, "found": {}}]}},
        {"table": {}},
        {"table": {"title": None, "rows": "nope"}, "manual_points": "x"},
    ]
    report = GradeReport("hw", "T", "s", checks=[
        check(f"c{i}", f"check {i}", "A", str(i), 1, 0, Status.FAILED, details=d) for i, d in enumerate(odd)
    ])
    page = render_html(report)
    rows = layer_rows(page)
    assert len(rows) == 4 + 1 + 1  # four odd rows, and two tables shown as having no rows
    assert rows[0][0] == "row-other" and "Unreadable row: None" in rows[0][1][1][1]
    assert page.count("The table has no rows.") == 2


# --------------------------------------------------------------------------- terminal


def test_terminal_summary_shows_failures_and_compacts_passes():
    report = build_example_report()
    text = summary(report, out_dir="grade-out")
    lines = text.splitlines()
    assert lines[0] == "CS 1678 Homework 4: Convolutional Neural Networks  (cs1678-hw4)"
    assert "Submission:   alice_hw4.zip" in lines
    assert "Graded files: cnn_trainer.py, alexnet_kernels.py" in lines
    assert "Score:        16.5 / 19 points" in lines
    assert "              + 6 points graded by course staff, pending" in lines
    assert "Warning: cnn_trainer.py downloads data at import time; the grader used its local copy instead." in lines
    assert "(1 more note in the full report)" in lines
    assert "Part B: 3/3 checks passed (7 / 7 points)" in lines
    assert "Part A: 3/4 checks passed, 1 failed (5.5 / 8 points)" in lines
    assert any(ln.startswith("  [FAIL] 1.5 / 4  AlexNet (7 classes)") for ln in lines)
    assert "  (3 other checks passed; see the report)" in lines  # passes in a failing part are counted, not listed
    assert not any("[PASS]" in ln for ln in lines)
    # the failed check's message (first 3 lines) and hint
    i = next(i for i, ln in enumerate(lines) if "[FAIL]" in ln)
    assert lines[i + 1] == "          4 of 12 rows differ from the Part A table:"
    assert lines[i + 2] == "            Conv2d-4: attrs 5 x 5, pad 2 expected, found 3 x 3, pad 1"
    assert lines[i + 3] == "            ReLU-8: missing"
    assert lines[i + 4] == "          ... 2 more lines in the full report"
    assert lines[i + 5].startswith("          Hint: Compare your nn.Sequential")
    assert "Part D: 2 checks graded by course staff, pending (6 points)" in lines
    assert "  [STAFF]   - / 4  Q1: why do the learned conv1 kernels look like edge detectors?  (graded by course staff)" in lines
    assert any("[STAFF]" in ln and "Q2" in ln for ln in lines)
    assert lines[-2:] == ["Results:      grade-out/results.json", "Report:       grade-out/report.html"]
    assert "\x1b" not in text


def test_terminal_colour_only_when_asked_and_data_cannot_inject_escapes():
    report = build_example_report()
    report.checks[2].message = "\x1b[2J\x1b[32mlooks fine\x1b[0m\rcarriage"
    report.checks[2].name = "evil \x1b]0;title\x07 name"
    plain = summary(report)
    assert "\x1b" not in plain and "\x07" not in plain and "\r" not in plain
    assert "\\x1b[2J\\x1b[32mlooks fine\\x1b[0m\\x0dcarriage" in plain
    coloured = summary(report, color=True)
    assert "\x1b[31m[FAIL]\x1b[0m" in coloured and "\x1b[2m  (" in coloured
    assert "\x1b[33m[STAFF]\x1b[0m" in coloured
    assert "\x1b[2J" not in coloured  # the submission's own escape stays defused
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_terminal_forty_checks_fit_on_one_screen():
    checks = []
    for i in range(40):
        part = "ABCD"[i // 10]
        failed = i in (13, 27)
        checks.append(check(f"c{i}", f"check number {i}", part, str(i), 1, 0 if failed else 1,
                            Status.FAILED if failed else Status.PASSED,
                            message="expected 7 logits\nfound 10\nshape [2, 10]\nmore\nmore" if failed else "",
                            hint="see Part B" if failed else ""))
    report = GradeReport("hw", "T", "s", checks=checks, graded_files=["a.py"])
    report.note("warning", "slow")
    text = summary(report, out_dir="out")
    lines = text.splitlines()
    assert len(lines) < 60
    assert "Part A: 10/10 checks passed (10 / 10 points)" in lines
    assert "Part B: 9/10 checks passed, 1 failed (9 / 10 points)" in lines
    assert sum("[PASS]" in ln for ln in lines) == 0  # passes are counted, failures listed
    assert sum("other checks passed; see the report" in ln for ln in lines) == 2  # parts B and C
    assert sum("[FAIL]" in ln for ln in lines) == 2
    assert text.count("expected 7 logits") == 2 and text.count("Hint: see Part B") == 2


def test_terminal_grader_error_self_check_and_minimal():
    report = GradeReport("hw", "T", "s", self_check=True, hidden_checks=12,
                         grader_error="worker crashed\nTraceback...\nline\nline\nline")
    text = summary(report)
    assert "Score:        0 / 0 points (incomplete: the grader did not finish)" in text
    assert "Self-check: public checks only; 12 more checks run at grading time." in text
    assert "GRADER ERROR: grading did not finish. Tell course staff." in text
    assert "  worker crashed" in text and "... 2 more lines" in text
    assert "No checks were run." in text
    assert "Results:" not in text
    bare = summary(GradeReport("hw", "", ""))
    assert "Grade report" in bare and "(unnamed)" in bare


def test_example_png_is_valid():
    png = make_png(3, 2)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and html_render._png_size(png) == (3, 2)
    assert html_render._png_size(kernel_mosaic(0)) == (97, 73)


@pytest.mark.parametrize("value, text", [(34944, "34,944"), (37752832.0, "37,752,832"), ("614656", "614,656"),
                                         (None, ""), ("n/a", "n/a"), (0, "0")])
def test_format_count(value, text):
    assert html_render.format_count(value) == text


@pytest.mark.parametrize("value, text", [(23.5, "23.5"), (24.0, "24"), (1 / 3, "0.33"), (-0.0, "0"), (0, "0")])
def test_format_points(value, text):
    assert html_render.format_points(value) == text


def test_gradescope_overview_names_every_graded_file():
    from grader.render.gradescope import to_results

    report = build_example_report()
    assert "Graded files: `cnn_trainer.py`, `alexnet_kernels.py`." in to_results(report)["output"]
    report.graded_files = ["cnn_trainer.py"]
    assert "Graded file: `cnn_trainer.py`." in to_results(report)["output"]
