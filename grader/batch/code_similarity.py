"""How much code two submissions share, for the integrity report (grader/batch/integrity.py).

Fingerprinting is copydetect's: Pygments tokens with every name, attribute, function, class
and string replaced by a placeholder (its `filter=True`), so renaming hides nothing; k-grams of
that text hashed and winnowed. A submission is ONE document (its .py files and its notebooks'
code cells, in path order), so functions reordered or moved to another file still match.

Boilerplate, which never counts: every k-gram of the starter code (as copydetect builds its
boilerplate, window 1), and, with at least 4 submissions, every fingerprint found in more than
half of them (a tutorial's training loop the whole class pasted), where a group of near-identical
submissions counts once (so a copy shared by most of a small class is not taken for boilerplate). We remove both ourselves
after fingerprinting rather than through CodeFingerprint's `boilerplate` argument, because
copydetect intersects with `assume_unique=True` on a list that repeats hashes, which also drops
fingerprints that merely occur twice in the student's own code.
"""
from __future__ import annotations

import bisect
import io
import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import get_token_coverage
from pygments import token as ptoken
from pygments.lexers import PythonLexer

from grader.render.htmltext import clean

K = 25  # k-gram length in filtered characters (copydetect's default noise threshold): about a line
WINDOW = 1  # no winnowing: every k-gram kept, so results do not depend on the per-process str hash seed
MIN_SHARED = 120  # filtered characters (about 5 lines) a pair must share to be flagged at all
MAX_CODE_CHARS = 1_000_000  # per submission, so one pasted data file cannot stall the class
CONTEXT_LINES = 3  # shown around a matched fragment
MAX_SHOWN_LINES = 60  # of a matched fragment
MAX_LINE_CHARS = 240  # per shown line
MIN_CLASS = 4  # submissions (groups of near-identical ones counting once) for the majority rule
NEAR_IDENTICAL = 0.7  # shared share of both fingerprint sets that makes two submissions one group
MAX_REPEATS = 16  # positions per hash used to find the longest fragment (repeated code explodes)


@dataclass
class Fragment:
    """Where a shared fragment is in one submission, and its text (before, match, after)."""
    where: str  # "model.py, lines 12-40" or "hw.ipynb, code cell 3, lines 1-25"
    first_line: int
    last_line: int
    before: str  # context lines, then the match, then context, as shown (lines clipped)
    match: str
    after: str


@dataclass
class CodePair:
    a: str
    b: str
    a_label: str
    b_label: str
    similarity_a: float  # share of a's code (boilerplate aside) also found in b
    similarity_b: float  # share of b's code also found in a
    shared_tokens: int  # filtered characters of a found in b (one per name or symbol, more per keyword)
    longest_fragment_tokens: int  # Pygments tokens (no spaces or comments) in the longest shared run
    longest_fragment_lines: int
    flagged: bool
    fragment_a: Fragment | None = None
    fragment_b: Fragment | None = None

    @property
    def similarity(self) -> float:
        # The larger ratio is what we sort and flag on: a copier who pads the copy with code of
        # their own lowers the smaller ratio but not the larger one (the original is still all
        # inside the copy). Its weakness, a tiny submission matching by chance, is what
        # MIN_SHARED is for.
        return max(self.similarity_a, self.similarity_b)


@dataclass
class CodeComparison:
    pairs: list[CodePair]  # at or above the floor, or flagged; most similar first
    compared: int  # submissions with any code
    pairs_compared: int
    starter_fingerprints: int
    common_fingerprints: int  # found in more than half of the submissions
    common_examples: list[str]  # a few such passages, as text, to show what was ignored
    notes: list[str] = field(default_factory=list)


@dataclass
class Document:
    text: str
    parts: list[tuple[int, str]]  # (offset in text, "model.py" or "hw.ipynb, code cell 3")
    notes: list[str] = field(default_factory=list)


def notebook_cells(text: str) -> list[str] | None:
    """The code cells' sources, with IPython magics and shell lines (`%`, `!`) blanked (kept as
    empty lines, so line numbers stay those of the cell); None if this is not a notebook."""
    try:
        nb = json.loads(text)
    except ValueError:
        return None
    if not isinstance(nb, dict):
        return None
    cells = nb.get("cells")
    if cells is None:  # nbformat 3 kept cells in worksheets, code in "input"
        cells = [c for ws in nb.get("worksheets") or [] if isinstance(ws, dict) for c in ws.get("cells") or []]
    out = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", cell.get("input", ""))
        source = "".join(s for s in source if isinstance(s, str)) if isinstance(source, list) else source
        if not isinstance(source, str):
            continue
        lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")]
        out.append("\n".join(lines))
    return out


def build_document(files: dict[str, str]) -> Document:
    """One submission's code as one text, files in sorted path order."""
    pieces: list[str] = []
    parts: list[tuple[int, str]] = []
    notes: list[str] = []
    size = 0
    for path in sorted(files):
        low = path.lower()
        if low.endswith(".py"):
            sources = [(path, files[path])]
        elif low.endswith(".ipynb"):
            cells = notebook_cells(files[path])
            if cells is None:
                notes.append(f"{path} is not a readable notebook; not compared.")
                continue
            sources = [(f"{path}, code cell {n}", code) for n, code in enumerate(cells, 1)]
        else:
            continue
        for where, code in sources:
            full = size + len(code) >= MAX_CODE_CHARS
            code = code[:MAX_CODE_CHARS - size - 1]
            parts.append((size, where))
            pieces.append(code + "\n")
            size += len(code) + 1
            if full:
                notes.append(f"Only the first {MAX_CODE_CHARS:,} characters of code were compared.")
                return Document("".join(pieces), parts, notes)
    return Document("".join(pieces), parts, notes)


def _fingerprint(text: str, window: int) -> CodeFingerprint:
    # `file` only names the document; fp= gives the text, language= skips guessing from a name.
    return CodeFingerprint("submission.py", K, window, filter=True, language="python", fp=io.StringIO(text))


def _prune(fp: CodeFingerprint, remove: set[int]) -> None:
    """Drop boilerplate fingerprints, as CodeFingerprint's own boilerplate argument would.
    Hashes become Python ints: set intersections of numpy scalars are several times slower."""
    kept = {}
    for h, idx in fp.hash_idx.items():
        if (h := int(h)) not in remove:
            kept[h] = idx
    fp.hash_idx = kept
    fp.hashes = set(kept)
    fp.token_coverage = get_token_coverage(kept, fp.k, len(fp.filtered_code))


def compare_code(docs: list[tuple[str, str, Document]], starter: dict[str, str], *,
                 threshold: float, floor: float) -> CodeComparison:
    """Every pair of submissions (key, label, document) compared; see the module docstring."""
    # Every k-gram of the starter, read as one program (as submissions are: k-grams that span
    # its cells or files count too) and file by file (for students who moved its code around).
    starter_doc = build_document(starter)
    starter_hashes: set[int] = set()
    for code in [starter_doc.text] + _parts_text(starter_doc):
        starter_hashes.update(int(h) for h in _fingerprint(code, 1).hashes)
    with_code = [(key, label, doc) for key, label, doc in docs if doc.text.strip()]
    fps = [_fingerprint(doc.text, WINDOW) for _, _, doc in with_code]
    common = _common(fps, starter_hashes)
    examples = _common_examples(fps, [doc for _, _, doc in with_code], common) if common else []
    for fp in fps:
        _prune(fp, starter_hashes | common)
    lowest = min(threshold, floor)
    repeats = [{h: len(idx) - 1 for h, idx in fp.hash_idx.items() if len(idx) > 1} for fp in fps]
    pairs = []
    for i in range(len(fps)):
        for j in range(i + 1, len(fps)):
            pair = _compare(with_code[i], with_code[j], fps[i], fps[j], (repeats[i], repeats[j]), threshold, floor, lowest)
            if pair is not None:
                pairs.append(pair)
    pairs.sort(key=lambda p: (-p.similarity, -p.longest_fragment_tokens, p.a, p.b))
    return CodeComparison(pairs, len(fps), len(fps) * (len(fps) - 1) // 2, len(starter_hashes), len(common),
                          examples)


def _common(fps: list[CodeFingerprint], starter: set[int]) -> set[int]:
    """Fingerprints in more than half of the submissions, a group of near-identical ones
    counting once: else three copies of one program in a class of five would erase it."""
    sets = [{int(h) for h in fp.hashes} - starter for fp in fps]
    counts = Counter(h for found in sets for h in found)
    candidates = {h for h, n in counts.items() if n > len(sets) / 2}
    if len(sets) < MIN_CLASS or not candidates:
        return set()
    family = list(range(len(sets)))  # union-find over near-identical pairs

    def root(n: int) -> int:
        while family[n] != n:
            family[n] = family[family[n]]
            n = family[n]
        return n

    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            # Both ways, so a short submission inside many others does not chain them together.
            small, large = sorted((len(sets[i]), len(sets[j])))
            if small >= NEAR_IDENTICAL * large > 0 and len(sets[i] & sets[j]) >= NEAR_IDENTICAL * large:
                family[root(i)] = root(j)
    groups: dict[int, set[int]] = {}
    for n, found in enumerate(sets):
        groups.setdefault(root(n), set()).update(found & candidates)
    if len(groups) < MIN_CLASS:
        return set()
    counts = Counter(h for found in groups.values() for h in found)
    return {h for h, n in counts.items() if n > len(groups) / 2}


def _parts_text(doc: Document) -> list[str]:
    bounds = [start for start, _ in doc.parts] + [len(doc.text)]
    return [doc.text[bounds[n]:bounds[n + 1]] for n in range(len(doc.parts))]


def _compare(left, right, fa: CodeFingerprint, fb: CodeFingerprint, repeats: tuple[dict, dict],
             threshold: float, floor: float, lowest: float) -> CodePair | None:
    if not fa.token_coverage or not fb.token_coverage:
        return None
    both = fa.hashes & fb.hashes
    # Each shared position covers at most K characters: most pairs cannot reach the floor, and
    # this skips compare_files for them (it builds one numpy array per shared fingerprint).
    if not both or max(_at_most(fa, both, repeats[0]), _at_most(fb, both, repeats[1])) < lowest:
        return None
    shared, (sim_a, sim_b), _ = compare_files(fa, fb)
    sim_a, sim_b = float(min(sim_a, 1.0)), float(min(sim_b, 1.0))
    flagged = max(sim_a, sim_b) >= threshold and int(shared) >= MIN_SHARED
    if max(sim_a, sim_b) < floor and not flagged:
        return None
    (ka, la, da), (kb, lb, db) = left, right
    pair = CodePair(ka, kb, la, lb, round(sim_a, 4), round(sim_b, 4), int(shared), 0, 0, flagged)
    run = _longest_run(fa, fb)
    if run is not None:
        (a0, a1), (b0, b1) = _to_raw(fa, run[0]), _to_raw(fb, run[1])
        pair.longest_fragment_tokens = _count_tokens(da.text[a0:a1])
        pair.fragment_a, pair.fragment_b = _fragment(da, a0, a1), _fragment(db, b0, b1)
        pair.longest_fragment_lines = max(f.last_line - f.first_line + 1 for f in (pair.fragment_a, pair.fragment_b))
    return pair


def _at_most(fp: CodeFingerprint, both: set[int], repeats: dict[int, int]) -> float:
    return K * (len(both) + sum(repeats[h] for h in both.intersection(repeats))) / fp.token_coverage


def _runs(positions: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(diagonal, position) pairs, sorted, into runs (diagonal, first, last) whose positions
    are at most WINDOW apart: winnowing picks at least one fingerprint per window."""
    runs: list[tuple[int, int, int]] = []
    for diag, pos in positions:
        if runs and runs[-1][0] == diag and pos - runs[-1][2] <= WINDOW:
            runs[-1] = (diag, runs[-1][1], pos)
        else:
            runs.append((diag, pos, pos))
    return runs


def _longest_run(fa: CodeFingerprint, fb: CodeFingerprint):
    """The longest run of fingerprints shared in the same order (filtered offsets in a, in b)."""
    points = []
    for h in fa.hashes & fb.hashes:
        for ia in fa.hash_idx[h][:MAX_REPEATS]:
            points.extend((ib - ia, ia) for ib in fb.hash_idx[h][:MAX_REPEATS])
    if not points:
        return None
    diag, first, last = max(_runs(sorted(points)), key=lambda r: (r[2] - r[1], -r[1]))
    return (first, last + K), (first + diag, last + diag + K)


def _to_raw(fp: CodeFingerprint, span: tuple[int, int]) -> tuple[int, int]:
    # Filtered offsets back to the submission's own text, as compare_files maps its slices,
    # less the blank lines the mapping takes in after the last token.
    pos = np.array(span)
    if len(fp.offsets) > 0:
        pos = pos + fp.offsets[:, 1][np.clip(np.searchsorted(fp.offsets[:, 0], pos), 0, fp.offsets.shape[0] - 1)]
    start, end = int(pos[0]), int(pos[1])
    return start, max(start + 1, start + len(fp.raw_code[start:end].rstrip()))


def _count_tokens(text: str) -> int:
    return sum(1 for kind, value in PythonLexer().get_tokens(text)
               if value.strip() and kind not in ptoken.Text and kind not in ptoken.Comment)


def _fragment(doc: Document, start: int, end: int) -> Fragment:
    text = doc.text
    end = max(start + 1, min(end, len(text)))
    starts = [p for p, _ in doc.parts]
    n = max(bisect.bisect_right(starts, start) - 1, 0)
    m = max(bisect.bisect_right(starts, end - 1) - 1, 0)
    part_start = starts[n] if starts else 0
    part_end = starts[n + 1] if n + 1 < len(starts) else len(text)
    first = text.count("\n", part_start, start) + 1
    last = text.count("\n", starts[m] if starts else 0, end - 1) + 1
    where = doc.parts[n][1] if doc.parts else "?"
    if m != n:
        span = f"{where}, line {first} to {doc.parts[m][1]}, line {last}"
    else:
        span = f"{where}, line {first}" if first == last else f"{where}, lines {first}-{last}"
    context_start = text.rfind("\n", 0, start) + 1
    for _ in range(CONTEXT_LINES):
        if context_start <= part_start:
            break
        context_start = text.rfind("\n", 0, context_start - 1) + 1
    context_start = max(context_start, part_start)
    limit = part_end if m == n else len(text)
    after_end = end  # the rest of the last matched line, then CONTEXT_LINES more lines
    for _ in range(CONTEXT_LINES + (text[end - 1] != "\n")):
        if after_end >= limit:
            break
        nxt = text.find("\n", after_end)
        after_end = len(text) if nxt < 0 else nxt + 1
    after_end = max(end, min(after_end, limit))
    match = text[start:end]
    shown = match.split("\n")
    if len(shown) > MAX_SHOWN_LINES:
        match = "\n".join(shown[:MAX_SHOWN_LINES]) + "\n"
        after = f"[... {len(shown) - MAX_SHOWN_LINES:,} more matching lines]"
    else:
        after = text[end:after_end].rstrip("\n")
    return Fragment(span, first, last, _clip(text[context_start:start]), _clip(match), _clip(after))


def _clip(text: str) -> str:
    """Lines as shown: control characters replaced, each at most MAX_LINE_CHARS long."""
    lines = [line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " [...]"
             for line in text.split("\n")]
    return clean("\n".join(lines))


def _common_examples(fps: list[CodeFingerprint], docs: list[Document], common: set[int]) -> list[str]:
    """Up to three of the longest passages made of fingerprints most of the class shares."""
    best = max(range(len(fps)), key=lambda n: (len(fps[n].hashes & common), -n))
    positions = sorted((0, i) for h in fps[best].hashes & common for i in fps[best].hash_idx[h])
    runs = sorted(_runs(positions), key=lambda r: (r[1] - r[2], r[1]))[:3]
    out = []
    for _, first, last in sorted(runs, key=lambda r: r[1]):
        a0, a1 = _to_raw(fps[best], (first, last + K))
        lines = docs[best].text[a0:a1].strip("\n").split("\n")
        out.append(_clip("\n".join(lines[:8] + (["..."] if len(lines) > 8 else []))))
    return out
