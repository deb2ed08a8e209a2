"""The handout's tables parse, and their blank columns resolve from the shapes."""
import pytest

from grader.rubric import load_rubric
from grader.spectable import TableError, parse_table, with_num_classes

RUBRIC = load_rubric("cs1678-hw4")


def rows(symbol):
    return {r.name: r for r in RUBRIC.model(symbol).table}


def test_alexnet_table_totals_and_rows():
    table = RUBRIC.model("AlexNet").table
    assert len(table) == 21
    assert sum(r.params for r in table) == 58_297_732
    assert table[15].name == "Linear-16" and table[15].shape == (4096,) and table[15].params == 37_752_832


def test_lone_numbers_resolve_to_the_column_the_shapes_need():
    alex = rows("AlexNet")
    assert (alex["Conv2d-1"].stride, alex["Conv2d-1"].padding) == ((4, 4), (0, 0))  # "11 x 11 4"
    assert (alex["Conv2d-4"].stride, alex["Conv2d-4"].padding) == ((1, 1), (2, 2))  # "5 x 5 2"
    assert (alex["MaxPool2d-3"].kernel, alex["MaxPool2d-3"].stride) == ((3, 3), (2, 2))  # "3 2"
    large = rows("AlexNetLargeKernel")
    assert (large["Conv2d-1"].padding, large["Conv2d-1"].stride) == ((1, 1), (8, 8))  # "21 x 21 1 8"
    assert (large["Conv2d-3"].padding, large["Conv2d-3"].stride) == ((2, 2), (2, 2))  # "7 x 7 2 2"
    assert (large["Conv2d-9"].padding, large["Conv2d-9"].stride) == ((0, 0), (2, 2))  # "3 x 3 2" -> 13 to 6
    assert rows("AlexNetAvgPooling")["AvgPool2d-13"].type == "AvgPool2d"


def test_class_count_rows_scale():
    seven = with_num_classes(list(RUBRIC.model("AlexNet").table), 4, 7)
    assert seven[-1].shape == (7,) and seven[-1].params == 4097 * 7
    assert seven[-2] == RUBRIC.model("AlexNet").table[-2]


def test_ambiguous_column_stays_open():
    # A 1x1 kernel on a 1x1 input with a lone "2": stride 2 and dilation 2 both give 1x1.
    row = parse_table("Conv2d-1 1 x 1 2 [-1, 8, 1, 1] 32", (3, 1, 1))[0]
    assert row.padding == (0, 0)
    assert row.stride is None and row.dilation is None  # left open: only shape and count are compared


@pytest.mark.parametrize("text, fragment", [
    ("Conv2d-1 11 x 11 4 [-1, 96, 54, 54] 34,944", "no reading of '11 x 11 4'"),
    ("Conv2d-1 11 x 11 4 [-1, 96, 55, 55] 34,945", "do not fit its shapes"),
    ("Conv2d-1 11 x 11 4 [96, 55, 55] 34,944", "must start with -1"),
    ("this is not a row", "cannot read row"),
    ("ReLU-2 [-1, 3, 227, 227] 0", "numbered [2]"),
])
def test_bad_tables_say_which_line_and_why(text, fragment):
    with pytest.raises(TableError) as info:
        parse_table(text, (3, 227, 227))
    assert fragment in str(info.value)
    assert str(info.value).startswith("line 1")
