"""The recurrent cell kind: an LSTM, GRU or variant cell that students write from scratch.

Its checks: the contract the starter fixes, the parameter count at the handout's sizes,
no built-in recurrent code, the behaviour the equations imply (with parts computed and
never used), and a memory task that only a correctly wired gated cell learns. The worker
exports one step of the cell at every size these use (`export`); the verifier runs them
(`measure`), and the worker measures in its own process only where export fails (`probe`).
"""
from .. import Kind

KIND = Kind(
    name="cell",
    checks=("contract", "parameters", "builtins", "behaviour", "memory"),
    verdicts="grader.kinds.cell.verdicts",
    primary=("contract",),
    worker={"export_cell": "grader.kinds.cell.export:export_cell", "cell": "grader.kinds.cell.probe:cell",
            "memory": "grader.kinds.cell.probe:memory"},
    verifier={"verify_cell": "grader.kinds.cell.measure:verify"},
    results="grader.kinds.cell.run",
    run="grader.kinds.cell.run",
    spec="grader.kinds.cell.spec",
    table="cell",
)
