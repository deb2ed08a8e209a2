"""predictions.csv: every bad file gets a clear message and no points; good files are scored."""
import pytest

from grader.predictions import PredictionsError, points_for, read_predictions, score

IDS = range(10)
TRUTH = {i: i % 3 for i in IDS}


def write(tmp_path, text, mode="w"):
    path = tmp_path / "predictions.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def good(rows=None, header="Id,Label", end="\n"):
    rows = rows if rows is not None else [(i, i % 3) for i in IDS]
    return end.join([header] + [f"{i},{label}" for i, label in rows]) + end


def read(path, **kw):
    return read_predictions(path, num_classes=3, expected_ids=IDS, **kw)


def test_a_correct_file_scores_with_per_class_counts_and_confusion(tmp_path):
    rows = [(i, i % 3) for i in IDS]
    rows[0] = (0, 1)  # true 0, predicted 1
    result = score(read(write(tmp_path, good(rows))), TRUTH, 3)
    assert (result.correct, result.total, result.accuracy) == (9, 10, 0.9)
    assert result.confusion == [[3, 1, 0], [0, 3, 0], [0, 0, 3]]
    assert [c["correct"] for c in result.per_class] == [3, 3, 3] and result.per_class[0]["total"] == 4


@pytest.mark.parametrize("variant", [
    good(end="\r\n"),                       # Windows line endings
    good() + "\n\n\n",                      # blank lines at the end
    "\ufeff" + good(),                      # a byte-order mark from Excel
    good().replace("\n", "\n\n", 3),        # blank lines between rows
    good(header="id,label"),                # lower case
    good(header=" Id , Label "),            # spaces
])
def test_harmless_variations_are_read(tmp_path, variant):
    assert read(write(tmp_path, variant)).labels == TRUTH


def test_other_column_names_are_accepted_and_named(tmp_path):
    predictions = read(write(tmp_path, good(header="ImageId,Prediction")))
    assert predictions.labels == TRUTH
    assert predictions.notes == ["Read column `ImageId` as Id and `Prediction` as Label. The expected header is `Id,Label`."]
    text = "Label,Id\n" + "\n".join(f"{i % 3},{i}" for i in IDS) + "\n"
    assert read(write(tmp_path, text)).labels == TRUTH


@pytest.mark.parametrize("text, message", [
    ("", "predictions.csv is empty."),
    ("\n\n  \n", "predictions.csv has only blank lines."),
    ("0,0\n1,1\n", "predictions.csv has no header: line 1 is `0,0`. The first line must be `Id,Label`."),
    (good(header="Image,Score,Guess"), "predictions.csv's header is `Image,Score,Guess`; it must be `Id,Label`"),
    (good([(i, i % 3) for i in range(8)]), "2 of the 10 ids are missing (first: 8, 9)"),
    (good([(i, i % 3) for i in IDS] + [(3, 0)]), "ids given more than once: 3"),
    (good([(i, i % 3) for i in range(9)] + [(12, 0)]), "line 11: id 12 is outside 0-9"),
    (good([(i, i % 3) for i in range(9)] + [(9, 7)]), "line 11: label 7 is outside 0-2"),
    (good([(i, i % 3) for i in range(9)] + [(9, "cat")]), "line 11: the label `cat` is not a whole number"),
    (good([(i, i % 3) for i in range(9)] + [(9, "0.97")]), "line 11: the label `0.97` is not a whole number"),
    (good([(i, i % 3) for i in range(9)] + [("x9", 1)]), "line 11: the id `x9` is not a whole number"),
    (good() + "10,1,extra\n", "line 12 has 3 fields, the header 2"),
])
def test_bad_files_get_a_clear_message(tmp_path, text, message):
    with pytest.raises(PredictionsError) as err:
        read(write(tmp_path, text))
    assert message in str(err.value)


def test_a_huge_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "predictions.csv"
    with path.open("w") as f:
        f.write("Id,Label\n")
        f.write("0,0\n" * 2_000_000)  # stands in for 10 million rows: far over the limit either way
    with pytest.raises(PredictionsError) as err:
        read(path)
    assert str(err.value).startswith("predictions.csv is 8,000,009 bytes; 10 rows of `Id,Label` need far less")


def test_many_problems_are_summarised_not_all_listed(tmp_path):
    rows = [(i, 9) for i in IDS]
    with pytest.raises(PredictionsError) as err:
        read(write(tmp_path, good(rows)))
    text = str(err.value)
    assert text.count("is outside 0-2") == 5 and text.endswith("; and more.")


@pytest.mark.parametrize("accuracy, points", [(0.6499, 0), (0.65, 5), (0.68, 8), (0.69, 12), (0.9, 15)])
def test_threshold_points(accuracy, points):
    assert points_for(accuracy, [(0.65, 5), (0.67, 8), (0.69, 12), (0.71, 15)]) == points
