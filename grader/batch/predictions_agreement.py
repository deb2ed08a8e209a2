"""Prediction files that agree more than honest work would, for the integrity report.

Two findings, per predictions item (one predictions.csv of the rubric):

* identical: the same label for every row. Not flagged when it says little: a file that
  predicts one class everywhere (an untrained model, the starter's placeholder), fewer than
  MIN_BOTH_WRONG rows, or, with the held-out labels, fewer than MIN_SAME_WRONG wrong rows (two
  files right on every row are bound to match).
* shared_errors (needs the held-out labels): of the rows both students got wrong, how many got
  the SAME wrong label, against how many independent errors would give.

The expected count sums, over the rows both got wrong, the chance that two independent students
pick the same wrong label for that row. It is the larger of two estimates, per row, so that
honest students are given the benefit of the doubt:
  - each student's own confusion: P_a(l | true class, wrong) from a's confusion matrix (a's
    wrong rows of that class, share that were labelled l), times the same for b, summed over l;
  - the rest of the class on that row, when at least MIN_OTHERS_WRONG other students got it
    wrong: sum over l of c_l (c_l - 1) / (n (n - 1)), c_l of those n other students chose l. Some
    images fool every model the same way; this keeps those from counting against a pair.
The chance of the observed count is a Poisson upper tail with that mean, which, for a sum of
independent yes/no events, overstates the tail (so understates the evidence).
A pair is flagged when that chance is below MAX_P, at least MIN_BOTH_WRONG rows were wrong for
both, at least MIN_SAME_WRONG share a wrong label, and the agreement is large, not just unlikely:
MIN_RATIO times expected, or closing MIN_EXCESS of the gap between expected and agreeing on every
row (Cohen's kappa). The second is for classes confused one way by everyone (cat for dog): where
independent errors already agree on 40% of rows, three times that is impossible even for a copy.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

MAX_P = 1e-6
MIN_BOTH_WRONG = 20
MIN_SAME_WRONG = 10
MIN_RATIO = 3.0
MIN_EXCESS = 0.6
MIN_OTHERS_WRONG = 4
MAX_CELLS = 50_000_000  # rows x labels of the class-wide count table; beyond it, confusion only


@dataclass
class PredictionFinding:
    kind: str  # "identical" | "shared_errors"
    item: str  # the predictions item id
    a: str
    b: str
    a_label: str
    b_label: str
    rows: int  # identical: rows in the files; shared_errors: rows both predicted that have a held-out label
    both_wrong: int | None  # None without held-out labels
    same_wrong: int | None
    expected_same_wrong: float | None
    p_value: float | None  # chance of agreeing this often with independent errors
    flagged: bool
    summary: str  # the finding in words


def compare_predictions(entries: list[tuple[str, str, dict[str, dict[int, int]]]],
                        truth: dict[str, dict[int, int]]) -> tuple[list[PredictionFinding], int]:
    """Findings for (key, label, predictions) entries, and how many pairs were compared."""
    findings: list[PredictionFinding] = []
    compared = 0
    items = sorted({item for _, _, preds in entries for item, rows in preds.items() if rows})
    for item in items:
        who = [(key, label, preds[item]) for key, label, preds in entries if preds.get(item)]
        compared += len(who) * (len(who) - 1) // 2
        labels = truth.get(item) or {}
        identical = _identical(item, who, labels)
        findings.extend(identical)
        if labels and len(who) >= 2:
            skip = {(f.a, f.b) for f in identical}
            findings.extend(f for f in _shared_errors(item, who, labels) if (f.a, f.b) not in skip)
    findings.sort(key=lambda f: (not f.flagged, f.item, f.kind != "identical",
                                 f.p_value if f.p_value is not None else 0.0, f.a, f.b))
    return findings, compared


def _identical(item: str, who, truth: dict[int, int]) -> list[PredictionFinding]:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for n, (_, _, rows) in enumerate(who):
        groups[tuple(sorted(rows.items()))].append(n)
    out = []
    for content, members in groups.items():
        if len(members) < 2:
            continue
        rows = dict(content)
        classes = set(rows.values())
        scored = [r for r in rows if r in truth]
        wrong = sum(1 for r in scored if rows[r] != truth[r])
        if len(classes) == 1:
            flagged, why = False, f"every row is class {next(iter(classes))}, as an untrained model or a placeholder file gives"
        elif len(rows) < MIN_BOTH_WRONG:
            flagged, why = False, "too few rows for matching to mean anything"
        elif truth and scored and wrong == 0:
            flagged, why = False, "both are correct on every row, so matching says nothing"
        elif truth and scored and wrong < MIN_SAME_WRONG:
            flagged, why = False, f"but both are wrong on only {wrong} row{'s' if wrong != 1 else ''}, so matching says little"
        elif truth and scored:
            flagged, why = True, f"including the same wrong label on all {wrong:,} rows they got wrong"
        else:
            flagged, why = True, ""
        for i, m in enumerate(members):
            for n in members[i + 1:]:
                words = f"Identical predictions for all {len(rows):,} rows of {item}" + (f", {why}" if why else "") + "."
                out.append(PredictionFinding("identical", item, who[m][0], who[n][0], who[m][1], who[n][1], len(rows),
                                             wrong if scored else None, wrong if scored else None,
                                             None, None, flagged, words))
    return out


def _shared_errors(item: str, who, truth: dict[int, int]) -> list[PredictionFinding]:
    ids = sorted(truth)
    values = sorted({*truth.values(), *(v for _, _, rows in who for v in rows.values())})
    index = {v: n for n, v in enumerate(values)}
    true = np.array([index[truth[r]] for r in ids], dtype=np.int64)
    pred = np.full((len(who), len(ids)), -1, dtype=np.int64)
    for s, (_, _, rows) in enumerate(who):
        pred[s] = [index[rows[r]] if r in rows else -1 for r in ids]
    wrong = (pred >= 0) & (pred != true)
    confusion = [_confusion(true[w], pred[s][w]) for s, w in enumerate(wrong)]
    class_counts = None
    if len(who) - 2 >= MIN_OTHERS_WRONG and len(ids) * len(values) <= MAX_CELLS:
        class_counts = np.zeros((len(ids), len(values)), dtype=np.int32)
        for s in range(len(who)):
            np.add.at(class_counts, (np.nonzero(wrong[s])[0], pred[s][wrong[s]]), 1)
    both_counts = wrong.astype(np.float32) @ wrong.T.astype(np.float32)  # rows both got wrong, every pair
    out = []
    for a in range(len(who)):
        for b in range(a + 1, len(who)):
            if both_counts[a, b] < MIN_BOTH_WRONG:
                continue
            rows = np.nonzero(wrong[a] & wrong[b])[0]
            same = int(np.count_nonzero(pred[a][rows] == pred[b][rows]))
            if same < MIN_SAME_WRONG:
                continue
            chance = _chance_by_confusion(confusion[a], confusion[b], true[rows])
            if not _large(same, len(rows), float(chance.sum())):
                continue  # the class-wide estimate can only raise the expectation
            if class_counts is not None:
                chance = np.maximum(chance, _chance_by_class(class_counts, rows, pred[a][rows], pred[b][rows]))
            expected = float(chance.sum())
            p = _poisson_tail(same, expected)
            if p >= MAX_P or not _large(same, len(rows), expected):
                continue
            (ka, la, _), (kb, lb, _) = who[a], who[b]
            scored = int(np.count_nonzero((pred[a] >= 0) & (pred[b] >= 0)))
            out.append(PredictionFinding("shared_errors", item, ka, kb, la, lb, scored, len(rows), same,
                                         round(expected, 2), p, True, _words(item, len(rows), same, expected, p)))
    return out


def _large(same: int, both: int, expected: float) -> bool:
    return same >= MIN_RATIO * expected or (same - expected) >= MIN_EXCESS * (both - expected)


def _confusion(true: np.ndarray, pred: np.ndarray) -> dict[int, dict[int, float]]:
    """P(label | true class, wrong), from one student's wrong rows."""
    counts: dict[int, Counter] = defaultdict(Counter)
    for t, p in zip(true.tolist(), pred.tolist()):
        counts[t][p] += 1
    return {t: {p: n / sum(c.values()) for p, n in c.items()} for t, c in counts.items()}


def _chance_by_confusion(ca, cb, true_rows: np.ndarray) -> np.ndarray:
    per_class = {}
    for t in set(true_rows.tolist()):
        pa, pb = ca.get(t, {}), cb.get(t, {})
        small, large = (pa, pb) if len(pa) <= len(pb) else (pb, pa)
        per_class[t] = sum(p * large.get(l, 0.0) for l, p in small.items())
    return np.array([per_class[t] for t in true_rows.tolist()], dtype=np.float64)


def _chance_by_class(counts: np.ndarray, rows: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Per row, the chance two of the OTHER students who got it wrong chose the same label."""
    c = counts[rows].astype(np.float64)
    at = np.arange(len(rows))
    c[at, pa] -= 1  # leave the pair itself out
    c[at, pb] -= 1
    n = c.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        chance = (c * (c - 1)).sum(axis=1) / (n * (n - 1))
    return np.where(n >= MIN_OTHERS_WRONG, chance, 0.0)


def _poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean), summed from k up in log space (it can be 1e-300)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    log_term = k * math.log(mean) - mean - math.lgamma(k + 1)
    total, j = 0.0, k
    while j - k < 1_000_000:
        total += math.exp(log_term)  # 0.0 once below 1e-308, harmlessly
        j += 1
        log_term += math.log(mean / j)
        if j > mean and math.exp(log_term) <= total * 1e-15:  # past the mode, terms only shrink
            break
    return min(1.0, total)


def _words(item: str, both: int, same: int, expected: float, p: float) -> str:
    about = f"{expected:,.0f}" if expected >= 10 else f"{expected:.1f}" if expected >= 1 else f"{expected:.2g}"
    ratio = f"{same / expected:,.0f}" if same >= 10 * expected else f"{same / expected:.1f}"
    odds = ("less than 1 in a billion" if p < 1e-9 else f"about 1 in {1 / p:,.0f}")
    return (f"In {item}, they agree on {same:,} of the {both:,} rows both got wrong; independent errors would "
            f"agree on about {about} ({ratio} times as often as expected). The chance of agreeing this often "
            f"by coincidence is {odds}.")
