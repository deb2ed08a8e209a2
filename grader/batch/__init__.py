"""Grading a whole class: `grade batch` and its library API.

    from grader.batch import BatchOptions, grade_class
    result = grade_class("export.zip", "cs1678-hw4", "class-out", BatchOptions(jobs=2))

source -> inputs (Gradescope, Canvas or folders; roster) -> jobs (one `grade` command per
submission, on this machine or a Dask cluster) -> ledger (what is finished) -> outputs
(gradebook, summary, integrity report).
"""
from .grading import BatchOptions, BatchResult, Row, grade_class

__all__ = ["BatchOptions", "BatchResult", "Row", "grade_class"]
