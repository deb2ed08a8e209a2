"""The worker's reply channel is the submission's to forge: whatever comes down it, the
grade finishes, the cost falls on the submission, and results.json stays small."""
import json
import time

import pytest

from gradekit import by_id, grade, mutate, plain_source, write_submission
from grader import api, protocol, replies
from grader.checks import evaluate
from grader.facts import Facts, ProbeOutcome
from grader.protocol import ProtocolError
from grader.render.gradescope import MAX_OUTPUT, to_results
from grader.results import CheckResult, GradeReport, Status
from grader.rubric import load_rubric

FAST = {"probe_seconds": 25, "import_seconds": 90}
AVG_FORWARD = '''    def forward(self, x):  # AVGFORWARD
        x = self.features(x)'''
# How a submission finds the reply pipe: the worker's environment names it; failing that,
# it is a write-only pipe past stdout and stderr (which may be pipes too).
FIND_FD = '''
def _reply_fd():
    import fcntl, os, stat
    if os.environ.get("DLGRADE_FDS"):
        return int(os.environ["DLGRADE_FDS"].split(",")[1])
    for fd in sorted(int(name) for name in os.listdir("/proc/self/fd")):
        try:
            if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode) and \\
                    fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                return fd
        except OSError:
            pass
    raise RuntimeError("no reply pipe")


def _request_id():
    import sys
    frame = sys._getframe()
    while frame is not None:
        request = frame.f_locals.get("request")
        if isinstance(request, dict) and "id" in request:
            return request["id"]
        frame = frame.f_back
    raise RuntimeError("no request")

'''
CHANNEL = "broke the grader's channel"
UNREADABLE = "sent a reply the grader could not read"


def hostile(body: str, prelude: str = "") -> str:
    """The plain submission whose AlexNetAvgPooling.forward starts with `body`."""
    source = mutate(plain_source(), (AVG_FORWARD, AVG_FORWARD.replace("        x = self.features(x)",
                                                                      body + "\n        x = self.features(x)")))
    return FIND_FD + prelude + source


def graded(tmp_path, source: str, *only: str):
    """Grade, write the outputs, and return the report with the results.json written."""
    report = grade(write_submission(tmp_path / "sub", source), *only, limits=FAST)
    paths = api.write_outputs(report, tmp_path / "out")
    return report, json.loads(paths["json"].read_text(encoding="utf-8"))


def assert_submissions_failure(report, results, check_id: str, *words: str):
    assert report.grader_error is None
    assert results["extra_data"]["grader_error"] is None
    check = by_id(report)[check_id]
    assert check.status is Status.FAILED and check.points == 0
    assert "grader-error" not in check.tags
    assert all(w in check.message for w in words), check.message
    assert "The grader itself failed" not in results["output"]


# ---------------------------------------------------------------- decoding, without a worker

@pytest.mark.parametrize("line", [
    b"[" * 100_000 + b"]" * 100_000,  # json.loads would raise RecursionError
    b"[" * 1_000 + b"]" * 1_000,
    b'{"a": ' + b"[" * 41 + b"]" * 41 + b"}",
    b"garbage", b"", b"[1, 2]", b'"text"', b"17", b'{"a": NaN}', b'{"a": 1e999}', b'{"a": ' + b"9" * 5_000 + b"}",
    b"\xff\xfe{}", b'{"a": "unterminated', b'{"a": 1} trailing', b"[" * 50 + b'"' + b"]" * 50,
])
def test_decode_refuses_anything_but_a_small_object(line):
    started = time.process_time()  # CPU time: what a busy machine does not change
    with pytest.raises(ProtocolError):
        protocol.decode(line)
    assert time.process_time() - started < 1


def test_decode_counts_no_brackets_inside_strings():
    deep_text = "[" * 500 + "{" * 500
    assert protocol.decode(json.dumps({"a": deep_text, "b": [[["x]]]"]]]}).encode()) == \
        {"a": deep_text, "b": [[["x]]]"]]]}
    assert protocol.decode(b'{"a": ' + b"[" * 39 + b"]" * 39 + b"}")  # 40 levels, the bound, is fine


def test_decode_refuses_too_many_values_before_parsing():
    line = b'{"a": [' + b"0," * protocol.MAX_NODES + b"0]}"
    started = time.process_time()
    with pytest.raises(ProtocolError, match="values"):
        protocol.decode(line)
    assert time.process_time() - started < 1


def test_decode_makes_lone_surrogates_writable():
    message = protocol.decode(b'{"m": "bad \\ud800 text", "\\udfff": ["\\ud800"]}')
    json.dumps(message, ensure_ascii=False).encode("utf-8")  # would raise on a lone surrogate


def test_a_real_reply_round_trips():
    reply = {"id": 4, "ok": True, "result": {"rows": [{"type": "Conv2d", "attrs": {"kernel": [11, 11]}}]},
             "notes": ["CUDA sent to the CPU"], "seconds": 1.25, "peak_mb": 800.5}
    env = protocol.envelope(protocol.decode(protocol.encode(reply)), "trace")
    assert (env.id, env.ok, env.result, env.error, env.seconds, env.peak_mb, env.notes) == \
        (4, True, reply["result"], None, 1.25, 800.5, ["CUDA sent to the CPU"])
    assert protocol.envelope({"id": 0, "ok": True, "result": {"python": "3.11"}}, "hello").seconds == 0.0


@pytest.mark.parametrize("message", [
    {"ok": True, "result": {}},  # no id, and not a progress report
    {"id": "3", "ok": True, "result": {}}, {"id": True, "ok": True, "result": {}}, {"id": -1, "ok": True, "result": {}},
    {"id": 3, "result": {}}, {"id": 3, "ok": "yes", "result": {}},
    {"id": 3, "ok": True, "result": []}, {"id": 3, "ok": True},
    {"id": 3, "ok": False, "error": "boom"}, {"id": 3, "ok": False, "error": {"message": 7}},
    {"id": 3, "ok": False, "error": {"line": "12"}}, {"id": 3, "ok": False, "error": {"trace": "x"}},
    {"id": 3, "ok": True, "result": {}, "seconds": "abc"}, {"id": 3, "ok": True, "result": {}, "seconds": -1},
    {"id": 3, "ok": True, "result": {}, "peak_mb": True}, {"id": 3, "ok": True, "result": {}, "notes": "a note"},
    {"id": 3, "ok": True, "result": {}, "notes": [1, 2]},
])
def test_envelope_refuses_bad_fields(message):
    with pytest.raises(ProtocolError):
        protocol.envelope(message)


def test_envelope_bounds_every_text():
    error = {"type": "T" * 5_000, "message": "m" * 50_000, "stage": "s" * 500, "file": "f" * 5_000,
             "code": "c" * 5_000, "line": 3, "trace": ["t" * 5_000] * 100, "extra": {"x": 1}}
    env = protocol.envelope({"id": 1, "ok": False, "error": error, "notes": ["n" * 5_000] * 100})
    for key, limit in protocol.ERROR_LIMITS.items():
        assert len(env.error[key]) <= limit
    assert "(cut: " in env.error["message"] and "extra" not in env.error
    assert sum(map(len, env.error["trace"])) <= protocol.MAX_TRACE
    assert len(env.notes) == protocol.MAX_NOTES and all(len(n) <= protocol.MAX_NOTE for n in env.notes)


def test_progress_reports_keep_only_numbers_and_short_labels():
    env = protocol.envelope({"progress": {"what": "w" * 500, "done": 5, "total": "all", "note": {"x": 1}}})
    assert env.id is None and env.progress == {"done": 5, "total": None, "what": "w" * 80, "unit": "", "note": ""}
    assert protocol.envelope({"progress": {"done": "many"}}).progress is None


@pytest.mark.parametrize("op, result", [
    ("load", {"status": "ok", "modules": {}, "symbols": []}),
    ("load", {"status": "ok", "modules": {}, "symbols": {"AlexNet": {"kind": "class", "module": ["x"]}}}),
    ("load", {"status": "ok", "modules": {}, "symbols": {"AlexNet": {"kind": "class", "path": "/etc/passwd"}}}),
    ("load", {"status": "ok", "modules": {"a.py": {"status": "ok", "skipped": [7]}}, "symbols": {}}),
    ("candidates", {"candidates": [{"kind": "class"}]}),
    ("candidates", {"candidates": [{"name": "Net", "rows": [{"type": "Conv2d", "attrs": {"kernel": [3]}}]}]}),
    ("candidates", {"candidates": [{"name": "Net", "rows": [{"type": "BatchNorm2d", "shape": "x"}]}]}),
    ("activations", {"images": [{"name": "x", "layers": [{"channels": 4, "size": [1], "data": ""}]}]}),
    ("activations", {"images": [{"name": "x", "layers": [{"channels": 4, "shown": 10 ** 6, "size": [1, 1],
                                                          "data": ""}]}]}),
    ("trace", {"error": {"type": ["not", "text"]}}),
])
def test_results_the_scorer_reads_are_checked(op, result):
    with pytest.raises(ProtocolError):
        replies.check_result(op, result)


def test_a_real_load_result_passes_and_its_errors_are_bounded():
    error = {"type": "SyntaxError", "message": "x" * 9_000, "stage": "import", "file": "a.py", "line": 3,
             "code": "def", "trace": []}
    load = {"status": "partial", "error": error, "notes": [],
            "modules": {"a.py": {"status": "partial", "error": error, "name": "a", "skipped": [
                {"cell": 2, "line": 1, "code": "train()", "type": "NameError", "message": "m"}]}},
            "symbols": {"AlexNet": {"kind": "class", "module_subclass": True, "file": "a.py", "path": "a.py", "line": 9,
                                    "module": "a.py"}, "Gone": {"kind": "missing", "module": "a.py"}}}
    checked = replies.check_result("load", load)
    assert len(checked["modules"]["a.py"]["error"]["message"]) <= protocol.ERROR_LIMITS["message"]
    assert checked["symbols"] == load["symbols"]


# ---------------------------------------------------------------- localize, without a worker

def test_localize_walks_deep_data_and_long_text_quickly():
    from grader.localize import LineMap, Localizer

    runner = Localizer({"nb.py": LineMap(((1, 1), (1, 2), (2, 1)))}, {"nb.py": "hw.ipynb"})
    deep = inner = []
    for _ in range(5_000):
        inner.append([])
        inner = inner[0]
    inner.append({"file": "nb.py", "line": 3, "message": "at nb.py:2 and x.py:" + "9" * 5_000})
    started = time.process_time()  # this process's CPU time: a busy machine does not add to it
    out = runner.localize(deep)
    text = runner.localize("a" * 200_000 + " nb.py:1")
    assert time.process_time() - started < 30  # the quadratic scan this guards against takes CPU minutes
    leaf = out
    for _ in range(5_000):
        leaf = leaf[0]
    assert leaf[0]["file"] == "hw.ipynb" and (leaf[0]["cell"], leaf[0]["line"]) == (2, 1)
    assert leaf[0]["message"].startswith("at hw.ipynb cell 1, line 2 and x.py:999")
    assert text.endswith(" hw.ipynb cell 1, line 1")


# ---------------------------------------------------------------- checks on malformed facts

def _hw4():
    rubric = load_rubric("cs1678-hw4")
    return rubric, {c.check_id: c for c in rubric.checks()}


def test_a_check_that_trips_on_worker_facts_is_the_submissions_failure():
    rubric, checks = _hw4()
    check = checks["alexnet.architecture.nc4"]
    facts = Facts(module="cnn_trainer.py", load={"status": "ok", "modules": {"cnn_trainer.py": {"status": "ok"}},
                                                 "symbols": {"AlexNet": {"kind": "class", "module": "cnn_trainer.py"}}})
    secret = "id,label\n" * 500
    facts.probes[("trace", "AlexNet", check.variant.suffix)] = ProbeOutcome(
        result={"constructed": True, "rows": [{"type": "Conv2d", "shape": [secret]}]})
    res = evaluate(check, facts, rubric)
    assert res.status is Status.FAILED and res.points == 0
    assert UNREADABLE in res.message and "while checking AlexNet" in res.message
    assert "id,label" not in res.message  # the exception's text carries the forged data: staff only
    assert "grader-error" not in res.tags and res.details["unreadable_reply"]
    report = GradeReport("a", "t", "s", checks=[res])
    [error] = to_results(report)["extra_data"]["check_errors"]
    assert error["check_id"] == check.check_id and error["counted_as"] == "unreadable_reply"
    assert "ValueError" in error["detail"] and len(error["detail"]) <= 4_000


def test_a_check_that_trips_on_the_scorers_own_facts_is_still_a_grader_error():
    rubric = load_rubric("ece661-hw2")
    check = next(c for c in rubric.checks() if c.kind == "predictions.accuracy")
    facts = Facts(module="m.py", predictions={check.predictions.id: {"file": "predictions.csv", "score": "broken"}})
    res = evaluate(check, facts, rubric)
    assert "grader-error" in res.tags and "Please tell the course staff" in res.message
    assert "TypeError" in res.details["staff_detail"]


# ---------------------------------------------------------------- results.json bounds

def test_results_json_text_is_bounded():
    huge = "0123456789,label\n" * 5_400
    check = CheckResult("x.y", "X", "A", "1.1", 1, 0, Status.FAILED, message=huge, hint=huge,
                        details={"table": {"title": huge, "rows": [{"status": "extra", "found": {"type": huge}}] * 500}})
    report = GradeReport("a", "t", huge, checks=[check] * 30, graded_files=[huge], environment={"python": huge})
    report.note("warning", huge)
    results = to_results(report)
    text = json.dumps(results, ensure_ascii=False)
    assert len(text.encode()) < 500_000
    assert all(len(t["output"]) <= MAX_OUTPUT for t in results["tests"])
    assert len(results["output"]) <= 16_000 and "(cut: " in results["tests"][0]["output"]


# ---------------------------------------------------------------- end to end, hostile submissions

def test_a_100000_deep_reply_costs_only_that_class(tmp_path):
    source = hostile('        import os\n        os.write(_reply_fd(), b"[" * 100000 + b"]" * 100000 + b"\\n")')
    report, results = graded(tmp_path, source, "alexnet.architecture.nc4", "alexnetavgpooling.architecture.nc4",
                             "alexnetavgpooling.architecture.nc7")
    assert_submissions_failure(report, results, "alexnetavgpooling.architecture.nc4", CHANNEL, "nested more than")
    assert "channel" in by_id(report)["alexnetavgpooling.architecture.nc4"].hint
    assert by_id(report)["alexnetavgpooling.architecture.nc7"].message.startswith("Not graded: an earlier check")
    assert by_id(report)["alexnet.architecture.nc4"].passed


def test_a_forged_reply_with_wrong_types_costs_only_that_class(tmp_path):
    body = ('        import json, os\n'
            '        forged = {"id": _request_id(), "ok": True, "result": {"constructed": True}, "seconds": "abc"}\n'
            '        os.write(_reply_fd(), json.dumps(forged).encode() + b"\\n")')
    report, results = graded(tmp_path, hostile(body), "alexnet.architecture.nc4", "alexnetavgpooling.architecture.nc4")
    assert_submissions_failure(report, results, "alexnetavgpooling.architecture.nc4", CHANNEL, "seconds")
    assert by_id(report)["alexnet.architecture.nc4"].passed


def test_replaced_grader_functions_with_mangled_facts_cost_only_that_check(tmp_path):
    """A well-formed reply whose result a check cannot read: the check fails, not the grader."""
    body = ('        import grader.protocol as P\n'
            '        real = P.encode\n'
            '        def once(message):\n'
            '            P.encode = real\n'
            '            rows = [{"type": "Conv2d", "shape": "id,label\\n" * 5400}]\n'
            '            return real({**message, "result": {"constructed": True, "rows": rows}})\n'
            '        P.encode = once')
    # The class with the forged reply is traced last, so no later probe meets its leftovers.
    report, results = graded(tmp_path, hostile(body), "alexnet.architecture.nc4", "alexnetavgpooling.architecture.nc4")
    assert_submissions_failure(report, results, "alexnetavgpooling.architecture.nc4", UNREADABLE,
                               "while checking AlexNetAvgPooling")
    assert by_id(report)["alexnet.architecture.nc4"].passed
    assert "id,label" not in json.dumps(results["tests"])
    assert [e["check_id"] for e in results["extra_data"]["check_errors"]] == ["alexnetavgpooling.architecture.nc4"]


def test_a_forged_load_reply_is_the_submissions_failure(tmp_path):
    """The runner itself reads the load result (symbol tables): it is checked as it arrives."""
    prelude = ('import grader.protocol as _P\n'
               '_real = _P.encode\n'
               '_P.encode = lambda m: _real({**m, "result": {**m.get("result", {}), "symbols": []}} if "result" in m else m)\n')
    report, results = graded(tmp_path, hostile("", prelude), "alexnet.architecture.nc4")
    assert_submissions_failure(report, results, "alexnet.architecture.nc4", "could not be imported", CHANNEL)


def test_a_closed_reply_channel_costs_only_that_class(tmp_path):
    source = hostile("        import os, time\n        os.close(_reply_fd())\n        time.sleep(20)")
    report, results = graded(tmp_path, source, "alexnet.architecture.nc4", "alexnetavgpooling.architecture.nc4")
    assert_submissions_failure(report, results, "alexnetavgpooling.architecture.nc4", "closed", "channel")
    assert by_id(report)["alexnet.architecture.nc4"].passed


def test_a_closed_channel_then_carrying_on_is_the_submissions_failure(tmp_path):
    """The worker then dies writing its reply: the probe fails like any other ended worker."""
    report, results = graded(tmp_path, hostile("        import os\n        os.close(_reply_fd())"),
                             "alexnet.architecture.nc4", "alexnetavgpooling.architecture.nc4")
    assert_submissions_failure(report, results, "alexnetavgpooling.architecture.nc4", "Not graded")
    assert by_id(report)["alexnet.architecture.nc4"].passed


def test_held_out_labels_in_an_exception_stay_out_of_results_json(tmp_path):
    """5,400 'id,label' lines in an exception's message, with the worker's own cut switched off."""
    body = ('        import grader.worker.failures as F\n'
            '        F.MAX_MESSAGE = 10 ** 9\n'
            '        raise ValueError("\\n".join(f"{i},{i % 7}" for i in range(5400)))')
    report, results = graded(tmp_path, hostile(body), "alexnet.architecture.nc4", "alexnetavgpooling.architecture.nc4",
                             "alexnetavgpooling.forward.nc4")
    assert report.grader_error is None
    text = (tmp_path / "out" / "results.json").read_text(encoding="utf-8")
    assert len(text.encode()) < 200_000
    outputs = [t["output"] for t in results["tests"]]
    assert all(len(o) <= MAX_OUTPUT for o in outputs) and "raised ValueError" in outputs[1]
    assert "(cut: " in outputs[1]  # and says so
    # Each check's text is cut, so only a few hundred of the 5,400 lines get through per check
    # (the labels themselves must be out of the submission's reach: that is the sandbox's part).
    lines = "\n".join(outputs).replace("\\n", "\n").split("\n")
    assert sum(line.strip(" .") in {f"{i},{i % 7}" for i in range(5400)} for line in lines) < 1_500


def test_a_lone_surrogate_in_an_exception_still_writes_results(tmp_path):
    report, results = graded(tmp_path, hostile('        raise ValueError("bad \\ud800 text")'),
                             "alexnetavgpooling.architecture.nc4")
    assert report.grader_error is None and "raised ValueError" in results["tests"][0]["output"]
    assert (tmp_path / "out" / "report.html").exists()
