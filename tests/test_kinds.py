"""Check kinds as folders: the registry, and typed facts checked as they are decoded."""
import sys
from pathlib import Path

import pytest

from grader import kinds
from grader.checks import _REGISTRY
from grader.kinds.cell import spec
from grader.kinds.cell.facts import CellFacts, MemoryFacts
from grader.kinds.wire import FactError, decode
from grader.rubric import load_rubric

GRADER = Path(kinds.__file__).resolve().parent.parent


@pytest.mark.parametrize("name", list(kinds.KINDS))
def test_a_kind_is_one_folder_and_names_only_what_is_in_it(name):
    kind = kinds.KINDS[name]
    folder = GRADER / "kinds" / name
    refs = [kind.verdicts, kind.results, kind.run, *kind.worker.values(), *kind.verifier.values()]
    for ref in filter(None, refs):
        module = ref.partition(":")[0]
        assert module.startswith(f"grader.kinds.{name}."), ref
        assert (folder / (module.rsplit(".", 1)[1] + ".py")).is_file(), ref
        assert kinds.resolve(ref) is not None
    assert set(kinds.resolve(kind.verdicts).CHECKS) == set(kind.checks)


def test_a_cell_check_leads_to_the_cell_folder_and_to_no_other_table():
    checks = [c for c in load_rubric("cs1699-hw5").checks() if c.cell is not None]
    assert {c.kind for c in checks} == {f"cell.{k}" for k in spec.CHECK_KINDS}
    for check in checks:
        assert kinds.of_check(check.kind).name == "cell"
        assert check.kind not in _REGISTRY  # the old verdict table no longer holds it
        assert kinds.verdicts()[check.kind].__module__ == "grader.kinds.cell.verdicts"
    assert kinds.runner_for("cell.memory").probe_key(checks[-1])[0] in ("cell", "memory")
    assert kinds.of_check("construct") is None  # model checks: not moved yet


@pytest.mark.parametrize("name", ["activation_function", "weight_penalty"])
def test_a_task_kind_in_a_folder_is_known_to_rubrics_only_through_the_registry(name):
    from grader import rubric

    assert name not in rubric.TASK_KINDS and name in kinds.task_kinds()
    graded = load_rubric("ece661-hw2")
    task = next(t for t in graded.tasks if t.kind == name)
    checks = [c for c in graded.checks() if c.task is task]
    assert [c.kind for c in checks] == [f"{name}.{k}" for k in kinds.resolve(kinds.KINDS[name].spec).CHECK_KINDS]
    assert all(c.name == kinds.check_name(task, c.kind.split(".", 1)[1]) for c in checks)


def test_the_scoring_side_of_a_kind_does_not_import_torch():
    import subprocess

    code = ("import sys, grader.kinds as k; [k.resolve(x.run) and k.resolve(x.verdicts) for x in k.KINDS.values()]; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_typed_facts_are_built_from_their_wire_form():
    facts = decode(CellFacts, {"params": 91600, "max_abs_h": "nan", "state_shapes": [[3, 5], [3, 5]],
                               "builtin_calls": [{"kernel": "lstm_cell", "where": "cells.py:9", "by": "graph"}],
                               "anatomy": {"dead": [{"name": "w_f", "shape": [100, 228], "whole": True}],
                                           "cell_state": {"measured": True, "one": True}}})
    assert facts.params == 91600 and facts.max_abs_h != facts.max_abs_h  # NaN travels as a string
    assert facts.builtin_calls[0].kernel == "lstm_cell" and facts.anatomy.dead[0].whole
    assert facts.anatomy.cell_state.one and not facts.anatomy.cell_state.zero
    assert decode(MemoryFacts, {}).passed is False  # a missing field takes its default


@pytest.mark.parametrize("data, where", [
    ({"params": "91600"}, "CellFacts.params"),
    ({"params": True}, "CellFacts.params"),  # bool never passes as a count
    ({"state_shapes": [[3, "5"]]}, "CellFacts.state_shapes[0][1]"),
    ({"anatomy": {"dead": [{"name": "w_f", "shape": [1]}]}}, "whole is missing"),
    ({"builtin_calls": "lstm_cell"}, "CellFacts.builtin_calls"),
])
def test_facts_of_the_wrong_shape_are_refused_and_say_where(data, where):
    with pytest.raises(FactError, match=where.replace("[", r"\[").replace("]", r"\]")):
        decode(CellFacts, data)
