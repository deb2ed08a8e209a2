"""Held-out labels matched to rubric items, scored, summarised; activation grids drawn."""
import struct
import zlib
from pathlib import Path

import pytest

from grader import heldout
from grader.errors import InputError
from grader.render.png import grid
from grader.rubric import load_rubric


def write(path: Path, rows: list[int]) -> Path:
    path.write_text("Id,Label\n" + "".join(f"{i},{r}\n" for i, r in enumerate(rows)))
    return path


def test_labels_are_matched_by_name_or_as_the_only_file(tmp_path):
    rubric = load_rubric("ece661-hw2")
    named = write(tmp_path / "ece661-hw2-test-labels.csv", [0])
    assert heldout.match_labels(rubric, (named,)) == {"test": named}
    other = write(tmp_path / "truth.csv", [0])
    assert heldout.match_labels(rubric, (other,)) == {"test": other}  # one item, one file
    with pytest.raises(InputError, match="nothere.csv: no such file"):
        heldout.match_labels(rubric, (tmp_path / "nothere.csv",))
    with pytest.raises(InputError, match="this assignment's labels files are named ece661-hw2-test-labels.csv"):
        heldout.match_labels(rubric, (named, other))


def test_many_classes_are_summarised_by_their_largest_mistakes(tmp_path):
    spec = load_rubric("dl-assignment2").predictions[0]
    truth = [i % 101 for i in range(505)]
    write(tmp_path / "labels.csv", truth)
    predicted = [(t + 1) % 101 if t in (3, 4) else t for t in truth]  # classes 3 and 4 always wrong
    write(tmp_path / "validation_predictions.csv", predicted)
    found = heldout.evaluate(spec, tmp_path, ["validation_predictions.csv"], heldout.load_truth(spec, tmp_path / "labels.csv"))
    score = found["score"]
    assert score["correct"] == 495 and score["total"] == 505
    assert "confusion" not in score
    assert score["top_confusions"][:2] == [{"true": "3", "predicted": "4", "count": 5}, {"true": "4", "predicted": "5", "count": 5}]
    assert found["shift"] is None


def test_labels_with_gaps_are_the_staffs_error(tmp_path):
    spec = load_rubric("dl-assignment2").predictions[0]
    (tmp_path / "labels.csv").write_text("Id,Label\n0,1\n2,3\n")
    with pytest.raises(InputError, match="must run from 0 without gaps"):
        heldout.load_truth(spec, tmp_path / "labels.csv")


def _decode_gray(png: bytes) -> tuple[int, int, list[bytes]]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert (depth, colour) == (8, 0)
    start = png.index(b"IDAT") + 4
    length = struct.unpack(">I", png[start - 8:start - 4])[0]
    raw = zlib.decompress(png[start:start + length])
    rows = [raw[y * (width + 1) + 1:(y + 1) * (width + 1)] for y in range(height)]
    return width, height, rows


def test_activation_grid_lays_out_and_enlarges_maps():
    maps = bytes([10] * 9 + [200] * 9 + [50] * 9)  # three 3x3 maps
    width, height, rows = _decode_gray(grid(maps, 3, 3, 3, columns=2))  # each 3x3 map enlarged 16x to 48x48
    assert (width, height) == (2 * 48 + 2, 2 * 48 + 2)
    assert rows[0][0] == 10 and rows[0][48 + 2] == 200 and rows[48 + 2][0] == 50
    assert rows[0][48] == 255 and rows[48 + 2][48 + 2] == 255  # gap and the empty fourth cell stay white
    with pytest.raises(ValueError):
        grid(maps[:-1], 3, 3, 3)
