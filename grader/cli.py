"""The `grade` command: a thin layer over grader.api."""
from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path

import click

from . import __version__, api
from .errors import InputError, RubricError
from .render.terminal import summary
from .rubric import available, load_rubric


class _DefaultToGrade(click.Group):
    """`grade SUBMISSION ...` runs the hidden `submission` command; named commands run as usual."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--list", "--help", "-h", "--version"):
            args = ["submission", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToGrade, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--list", "list_", is_flag=True, help="List the assignments this grader knows, with titles and points.")
@click.version_option(__version__, prog_name="dlgrade")
@click.pass_context
def main(ctx: click.Context, list_: bool) -> None:
    """Grade PyTorch homework against its rubric.

    \b
      grade SUBMISSION --assignment ID [--out DIR] [--device auto|cpu|cuda] [--self-check]
                       [--labels FILE] [--data DIR]
      grade --list
      grade batch SOURCE --assignment ID --out DIR [--roster CSV] [--jobs N] [--engine local|dask]
      grade build-autograder ID -o autograder.zip

    SUBMISSION is a .zip, a folder, or one .py file. Writes DIR/results.json (Gradescope's
    format) and DIR/report.html, and prints a summary. Exit status: 0 when grading finished,
    whatever the score; 2 when the input cannot be graded; 1 when the grader itself failed.
    """
    if list_:
        width = max((len(a) for a in available()), default=0) + 2
        for assignment, path in sorted(available().items()):
            try:
                rubric = load_rubric(assignment)
            except RubricError as exc:
                click.echo(f"{assignment:<{width}}(rubric error: {exc})")
                continue
            auto = sum(c.points for c in rubric.checks())
            manual = sum(m.points for m in rubric.manual)
            click.echo(f"{assignment:<{width}}{rubric.title}  [{auto:g} automatic + {manual:g} by staff = {auto + manual:g} points]")
        return
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@main.command("submission", hidden=True)
@click.argument("submission", type=click.Path(path_type=Path))
@click.option("--assignment", "-a", required=True, help="Assignment id, e.g. cs1678-hw4 (see grade --list).")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), default=Path("grade-out"), show_default=True,
              help="Folder for results.json and report.html.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where training smoke tests run; auto uses a GPU when one is present.")
@click.option("--self-check", is_flag=True, help="Run only the checks students may see, for checking work before submitting.")
@click.option("--only", multiple=True, metavar="PATTERN",
              help="Run only checks whose id matches, e.g. 'alexnet.*' (repeatable).")
@click.option("--isolation", type=click.Choice(["auto", "bwrap", "user", "process"]), default="auto", show_default=True,
              help="How the submission is isolated; auto picks the strongest this machine allows.")
@click.option("--labels", "labels", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Held-out labels (an Id,Label CSV) to score the submission's predictions file against (repeatable).")
@click.option("--data", "data", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="DIR",
              help="Course data folder holding the images a rubric names (e.g. accordion/image_0001.jpg for activation maps).")
@click.option("--color/--no-color", default=None, help="Colour the summary (default: when printing to a terminal).")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default="every core this grade may use",
              help="Torch threads in each sandboxed process (grade batch gives each job its share of the cores).")
def grade_submission(submission: Path, assignment: str, out: Path, device: str, self_check: bool, only: tuple[str, ...],
                     isolation: str, labels: tuple[Path, ...], data: Path | None, color: bool | None,
                     threads: int) -> None:
    """Grade SUBMISSION against an assignment's rubric."""
    if os.environ.get("DLGRADE_BATCH_PARENT", "").isdigit():  # started by grade batch: end with its job
        from .identity import die_with

        die_with(int(os.environ["DLGRADE_BATCH_PARENT"]))
    options = api.Options(device=device, self_check=self_check, only=only, isolation=isolation, labels=labels,
                          data=data, threads=threads)
    try:
        report = api.grade(submission, assignment, options)
    except (InputError, RubricError) as exc:
        api.write_outputs(api.failure_report(assignment, submission.name, str(exc)), out)
        click.echo(f"grade: {exc}", err=True)
        sys.exit(2)
    except Exception:
        detail = traceback.format_exc(limit=8)
        api.write_outputs(api.failure_report(assignment, submission.name, "the grader failed: " + detail.splitlines()[-1],
                                             grader_error=detail), out)
        click.echo(f"grade: internal error, see {out / 'results.json'}\n{detail}", err=True)
        sys.exit(1)
    api.write_outputs(report, out)
    use_color = sys.stdout.isatty() if color is None else color
    click.echo(summary(report, color=use_color, out_dir=str(out)))
    if report.grader_error:
        sys.exit(1)


@main.command("batch")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--assignment", "-a", required=True, help="Assignment id, e.g. cs1678-hw4 (see grade --list).")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder for the gradebook, the summary, the integrity report and one folder per submission.")
@click.option("--roster", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="CSV",
              help="Every student in the class (id, name, email): one who submitted nothing gets a 'missing' row.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default="one per core, as memory allows",
              help="Submissions graded at once on this machine (the local engine), or LocalCluster workers.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: this machine. dask: one task per submission on a Dask distributed cluster.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="The Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster on this machine).")
@click.option("--labels", "labels", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Held-out labels to score predictions files against (repeatable), checked once for the class.")
@click.option("--data", "data", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="DIR",
              help="Course data folder holding the images a rubric names.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where training smoke tests run; with GPUs, each job is given one.")
@click.option("--isolation", type=click.Choice(["auto", "bwrap", "user", "process"]), default="auto", show_default=True,
              help="How each submission is isolated, exactly as for one grade.")
@click.option("--force", is_flag=True, help="Regrade every submission, even those whose inputs did not change.")
@click.option("--only", "only", multiple=True, metavar="STUDENT",
              help="Regrade only this student (id, email or folder name; repeatable); the others' results are kept.")
@click.option("--checks", "checks", multiple=True, metavar="PATTERN",
              help="Run only checks whose id matches, as grade --only (repeatable).")
@click.option("--starter", "starter", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
              help="Starter code the class began from (file or folder; repeatable): never counted as copying.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=1800, show_default=True,
              help="Seconds one submission's whole grade may take before it is stopped.")
def batch(source: Path, assignment: str, out: Path, roster: Path | None, jobs: int, engine: str, scheduler: str | None,
          labels: tuple[Path, ...], data: Path | None, device: str, isolation: str, force: bool, only: tuple[str, ...],
          checks: tuple[str, ...], starter: tuple[Path, ...], timeout_s: float) -> None:
    """Grade every submission in SOURCE: a Gradescope or Canvas export (zip or folder), or a
    folder with one folder, zip, notebook or .py per student.

    Writes OUT/gradebook.csv, summary.html, summary.json, integrity.html, integrity.csv, the
    Gradescope and Canvas score-import files, and OUT/<student>/results.json and report.html.
    A rerun grades only what changed. Exit status: 0 whatever the students' code did; 1 when
    the grader itself failed on a submission; 2 when SOURCE, the roster or the labels cannot be used.
    """
    from .batch import BatchOptions, grade_class

    # A batch stopped by `kill` (or a scheduler ending its job) stops as Ctrl-C stops it: the
    # running grades are ended, and every finished one is kept.
    signal.signal(signal.SIGTERM, _interrupt)
    options = BatchOptions(roster=roster, jobs=jobs, engine=engine, scheduler=scheduler, labels=labels, data=data,
                           device=device, isolation=isolation, checks=checks, force=force, only=only,
                           timeout_s=timeout_s, starter=starter)
    try:
        result = grade_class(source, assignment, out, options)
    except (InputError, RubricError) as exc:
        click.echo(f"grade batch: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("grade batch: stopped; every finished submission is kept, and a rerun grades the rest.", err=True)
        sys.exit(130)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(_status_counts(result).items()))
    click.echo(f"{len(result.rows)} submissions ({counts}); graded now: {result.graded_now}, "
               f"in {result.seconds:.0f} s.")
    for name in ("gradebook", "summary_html", "integrity_html"):
        click.echo(f"  {result.outputs[name]}")
    for row in result.grader_faults:
        click.echo(f"grade batch: the grader failed on {row.submission.key}: {row.message}", err=True)
    sys.exit(result.exit_code)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _status_counts(result) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    if result.export.missing:
        counts["missing"] = len(result.export.missing)
    return counts


@main.command("build-autograder")
@click.argument("assignment")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=Path("autograder.zip"), show_default=True,
              help="Where to write the zip to upload to Gradescope.")
@click.option("--labels", "labels", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Held-out labels to put in the zip, for scoring predictions files (repeatable).")
@click.option("--data", "data", type=click.Path(path_type=Path, file_okay=False), default=None, metavar="DIR",
              help="Course data folder: the images the rubric names are copied into the zip.")
def build_autograder(assignment: str, output: Path, labels: tuple[Path, ...], data: Path | None) -> None:
    """Build the autograder zip (setup.sh, run_autograder, grader, rubric) for ASSIGNMENT."""
    from .gradescope import build_zip

    try:
        path, files = build_zip(assignment, output, labels, data)
    except (InputError, RubricError, KeyError) as exc:
        click.echo(f"grade: {exc.args[0] if isinstance(exc, KeyError) else exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {path} ({len(files)} files). Upload it as the autograder; see README 'Gradescope' for settings.")


if __name__ == "__main__":
    main()
