"""Datasets for CS1699 HW5: IMDB reviews (sentiment) and Shakespeare (characters).

IMDB: a CSV with columns `review` (text; tokens are split on single spaces) and `sentiment`
('positive' -> 1, 'negative' -> 0). Each item is (token ids of BEGIN + review + END, label).
Shakespeare: plain text; each item is (ids of history_length characters, id of the next one).
Both accept the text itself (keyword arguments) instead of a file, so tests need no files.
"""
import collections
import csv
import io
from typing import Optional, Sequence

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

PADDING_TOKEN = 0
SPECIAL_TOKENS = ['PAD_TOKEN', 'BEGIN_TOKEN', 'OOV_TOKEN', 'END_TOKEN']  # ids 0, 1, 2, 3
BEGIN_TOKEN, OOV_TOKEN, END_TOKEN = 1, 2, 3
LABELS = {'negative': 0, 'positive': 1}


def tokenize(review: str) -> list:
    # single spaces separate tokens; runs of spaces would make empty tokens, which carry nothing
    return [token for token in review.split(' ') if token]


def build_vocabulary(token_lists, min_count: int, max_size: Optional[int]) -> list:
    """Special tokens first, then the most frequent tokens seen at least min_count times,
    at most max_size entries in all (None: no limit)."""
    counts = collections.Counter(token for tokens in token_lists for token in tokens)
    vocabulary = list(SPECIAL_TOKENS)
    # most_common breaks ties by first appearance, so the result does not depend on hashing
    for token, count in counts.most_common():
        if max_size is not None and len(vocabulary) >= max_size:
            break
        if count < min_count:
            break  # sorted by count: every later token is rarer
        if token not in SPECIAL_TOKENS:  # a review containing the literal text 'PAD_TOKEN'
            vocabulary.append(token)
    return vocabulary


class IMDBReviewDataset(Dataset):
    """IMDB reviews; items are (LongTensor [length + 2] of token ids, label 0/1)."""

    def __init__(self, csv_path: Optional[str] = None, vocabulary: Optional[Sequence[str]] = None,
                 vocab_min_count: int = 10, vocab_max_size: Optional[int] = None,
                 review_max_length: int = 200, *, csv_text: Optional[str] = None):
        if (csv_path is None) == (csv_text is None):
            raise ValueError('give exactly one of csv_path and csv_text')
        if csv_text is None:
            with open(csv_path, newline='', encoding='utf-8') as f:
                csv_text = f.read()
        self.review_max_length = review_max_length

        self.reviews, self.labels = [], []
        reader = csv.DictReader(io.StringIO(csv_text, newline=''))
        missing = {'review', 'sentiment'} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f'IMDB CSV lacks column(s) {sorted(missing)}; has {reader.fieldnames}')
        for row_number, row in enumerate(reader, start=2):  # line 1 is the header
            sentiment = row['sentiment'].strip().lower()
            if sentiment not in LABELS:
                raise ValueError(f'row {row_number}: sentiment {row["sentiment"]!r} is neither '
                                 f'positive nor negative')
            self.reviews.append(tokenize(row['review'])[:review_max_length])
            self.labels.append(LABELS[sentiment])

        if vocabulary is None:
            # counted on the truncated reviews: the words the model will actually read
            vocabulary = build_vocabulary(self.reviews, vocab_min_count, vocab_max_size)
        elif list(vocabulary[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f'a vocabulary must start with {SPECIAL_TOKENS}')
        self.vocabulary = list(vocabulary)
        self.token_to_id = {token: i for i, token in enumerate(self.vocabulary)}
        for special in SPECIAL_TOKENS:  # literal 'PAD_TOKEN' in a review is an unknown word
            self.token_to_id.pop(special)

        self.encoded = [torch.tensor([BEGIN_TOKEN] + [self.token_to_id.get(t, OOV_TOKEN) for t in tokens]
                                     + [END_TOKEN], dtype=torch.long) for tokens in self.reviews]

    def get_vocabulary(self) -> list:
        return list(self.vocabulary)

    def print_statistics(self) -> None:
        lengths = [len(tokens) for tokens in self.reviews]
        n_tokens = max(sum(lengths), 1)
        n_oov = sum(int((ids == OOV_TOKEN).sum()) for ids in self.encoded)
        positives = sum(self.labels)
        print(f'reviews: {len(self.reviews)} ({positives} positive, {len(self.labels) - positives} negative)')
        print(f'vocabulary: {len(self.vocabulary)} entries ({len(SPECIAL_TOKENS)} special)')
        print(f'review length (truncated at {self.review_max_length}): '
              f'mean {sum(lengths) / max(len(lengths), 1):.1f}, max {max(lengths, default=0)}')
        print(f'out-of-vocabulary tokens: {n_oov} of {n_tokens} ({100.0 * n_oov / n_tokens:.1f}%)')

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, index):
        return self.encoded[index], self.labels[index]


def imdb_collate_fn(batch, padding_token_id: int = PADDING_TOKEN):
    """[(ids, label)] -> (padded ids [B, T] int64, lengths [B] int64, labels [B] int64).

    Reviews are padded at the end, so the last real token of review b is at lengths[b] - 1.
    """
    reviews = [torch.as_tensor(ids, dtype=torch.long) for ids, _ in batch]
    lengths = torch.tensor([len(ids) for ids in reviews], dtype=torch.long)           # [B]
    padded = pad_sequence(reviews, batch_first=True, padding_value=padding_token_id)  # [B, T]
    labels = torch.tensor([int(label) for _, label in batch], dtype=torch.long)       # [B]
    return padded, lengths, labels


class ShakespeareDataset(Dataset):
    """Every window of history_length characters and the character that follows it.

    The vocabulary is sorted(set(text)), so ids do not depend on the order of the text.
    Pass a path, or the text itself as text=..., or already encoded ids as
    encoded_text=... together with vocabulary=....
    """

    def __init__(self, txt_path: Optional[str] = None, history_length: int = 100, *,
                 text: Optional[str] = None, encoded_text: Optional[Sequence[int]] = None,
                 vocabulary: Optional[Sequence[str]] = None):
        if sum(source is not None for source in (txt_path, text, encoded_text)) != 1:
            raise ValueError('give exactly one of txt_path, text and encoded_text')
        if history_length < 1:
            raise ValueError(f'history_length must be positive, not {history_length}')
        if txt_path is not None:
            with open(txt_path, encoding='utf-8') as f:
                text = f.read()
        if encoded_text is not None:
            if vocabulary is None:
                raise ValueError('encoded_text needs the vocabulary it was encoded with')
            ids = torch.as_tensor(encoded_text, dtype=torch.long)
        else:
            vocabulary = sorted(set(text)) if vocabulary is None else vocabulary
            index = {ch: i for i, ch in enumerate(vocabulary)}
            unknown = sorted(set(text) - set(index))
            if unknown:
                raise ValueError(f'characters missing from the vocabulary: {unknown[:10]}')
            ids = torch.tensor([index[ch] for ch in text], dtype=torch.long)
        if len(ids) <= history_length:
            raise ValueError(f'the text has {len(ids)} characters: too short for one window of '
                             f'{history_length} plus the next character')
        self.vocabulary = list(vocabulary)
        self.history_length = history_length
        self.ids = ids  # [N]; windows are views into it, so memory stays O(N)

    def get_vocabulary(self) -> list:
        return list(self.vocabulary)

    def __len__(self) -> int:
        return len(self.ids) - self.history_length

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        end = index + self.history_length
        return self.ids[index:end], self.ids[end]  # [history_length], scalar
