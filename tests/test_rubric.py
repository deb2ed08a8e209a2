"""Rubrics load into numbered checks; a malformed one fails with file, field and reason."""
from pathlib import Path

import pytest

from grader.errors import RubricError
from grader.rubric import available, load_rubric, load_rubric_file

GOOD = Path(load_rubric("cs1678-hw4").path).read_text()


def test_hw4_rubric_adds_up_to_the_handout():
    rubric = load_rubric("cs1678-hw4")
    checks = rubric.checks()
    auto = sum(c.points for c in checks)
    manual = sum(m.points for m in rubric.manual)
    assert (auto, manual, auto + manual) == (22, 8, 30)
    assert len({c.check_id for c in checks}) == len(checks) == 41
    assert checks[0].check_id == "alexnet.construct.nc4" and checks[0].number == "1.1"
    assert {c.visibility for c in checks if c.check_id.endswith(".nc7")} == {"after_due_date"}
    assert rubric.symbols() == ["AlexNet", "AlexNetLargeKernel", "AlexNetAvgPooling", "analyze_model_kernels",
                                "visualize_kernels"]


def test_check_ids_are_stable():
    """Rosters and regrades match checks by id: changing one is a breaking change."""
    ids = [c.check_id for c in load_rubric("cs1678-hw4").checks()]
    assert ids[:6] == ["alexnet.construct.nc4", "alexnet.architecture.nc4", "alexnet.forward.nc4",
                       "alexnet.gradients.nc4", "alexnet.dropout.nc4", "alexnet.training.nc4"]
    assert ids[-3:] == ["kernels.calls", "kernels.images", "manual.c.findings"]


def write(tmp_path, text, name="hw.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("change, field, reason", [
    (('visibility = "visible" }', 'visibility = "public" }'), "model[0].variants[0].visibility", "'public' is not one of"),
    (("[limits]", "[limits]\nbogus = 1"), "limits.bogus", "unknown field"),
    (("Conv2d-1 11 x 11 4 [-1, 96, 55, 55] 34,944", "Conv2d-1 11 x 11 4 [-1, 96, 55, 55] 34,000"), "model[0].table",
     "line 4: Conv2d-1: 34,000 parameters do not fit its shapes"),
    (('part = "A"', 'part = "Z"'), "model[0].part", "'Z' is not one of the [parts]"),
    (('symbol = "AlexNet"', 'symbol = "Alex Net"'), "model[0].symbol", "is not a Python name"),
    (("schema = 1", "schema = 2"), "schema", "reads schema 1"),
    (("construct = 0.5", "construct = -1"), "model[0].points.construct", "cannot be negative"),
    (("table_num_classes = 4", "table_num_classes = 5"), "model[0].table_num_classes", "last row has 4 outputs"),
    (('label_type = "domain"', "label_type = 4"), "task[0].flags", "must map names to strings"),
])
def test_malformed_rubrics_name_file_field_and_reason(tmp_path, change, field, reason):
    assert GOOD.count(change[0]) >= 1
    path = write(tmp_path, GOOD.replace(change[0], change[1], 1))
    with pytest.raises(RubricError) as info:
        load_rubric_file(path)
    assert info.value.path == str(path)
    assert info.value.field == field
    assert reason in info.value.reason


def test_invalid_toml_and_missing_fields(tmp_path):
    with pytest.raises(RubricError, match="not valid TOML"):
        load_rubric_file(write(tmp_path, "id = "))
    with pytest.raises(RubricError) as info:
        load_rubric_file(write(tmp_path, GOOD.replace('title = "CS 1678 HW4: AlexNet on PACS"\n', "")))
    assert (info.value.field, info.value.reason) == ("title", "required field is missing")


def test_variant_rubric_extends_its_base(tmp_path):
    write(tmp_path, GOOD, "cs1678-hw4.toml")
    variant = write(tmp_path, 'extends = "cs1678-hw4"\nid = "hw4-b"\ntitle = "Only more"\n'
                              '[limits]\ntotal_seconds = 60\n', "hw4-b.toml")
    rubric = load_rubric_file(variant)
    assert rubric.title == "Only more" and rubric.limits.total_seconds == 60
    assert rubric.limits.memory_mb == 3000  # merged, not replaced
    assert len(rubric.checks()) == 41


def test_rubrics_in_the_repository_all_load():
    assert "cs1678-hw4" in available()
    for name in available():
        load_rubric(name)


def test_a_model_can_have_its_own_training_settings(tmp_path):
    rubric = load_rubric("cs1678-hw4-extended")
    tiny = rubric.model("AlexNetTiny")
    assert tiny.training.lr == 4e-4 and tiny.training.steps == rubric.training.steps == 4
    assert rubric.model("AlexNet").training is None
    bad = GOOD.replace('points = { construct = 0.5,', 'training = { lr = -1 }\npoints = { construct = 0.5,', 1)
    with pytest.raises(RubricError) as info:
        load_rubric_file(write(tmp_path, bad))
    assert (info.value.field, info.value.reason) == ("model[0].training.lr", "must be positive")
