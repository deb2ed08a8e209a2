"""A generated stand-in for the IMDB review CSV (tests only), in the real file's format.

Columns `review,sentiment`; sentiment is 'positive' or 'negative', half each. A review is
neutral filler with a few cue words of its own sentiment (and sometimes one of the other),
so the label is learnable from words alone, wherever they sit in the review. Some reviews
hold commas, quoted phrases and IMDB's `<br /><br />` breaks, which exercises CSV quoting.
"""
import csv
import io
import random
from typing import Optional

POSITIVE_WORDS = ('wonderful', 'brilliant', 'superb', 'moving', 'delightful', 'masterpiece',
                  'charming', 'excellent')
NEGATIVE_WORDS = ('awful', 'boring', 'dreadful', 'clumsy', 'tedious', 'mess', 'terrible', 'dull')
FILLER_WORDS = ('the', 'movie', 'film', 'plot', 'actor', 'a', 'and', 'of', 'scene', 'director',
                'story', 'it', 'was', 'this', 'with', 'in', 'character', 'ending', 'music',
                'camera', 'i', 'saw', 'on', 'sunday', 'my', 'friend', 'cast', 'script', 'two',
                'hours', 'that', 'is', 'about', 'family', 'city', 'night', 'some', 'then')
# attached punctuation and markup, as in the real reviews: each is one space-separated token
DECORATIONS = ('however,', 'well,', '"honestly"', 'said,', "isn't", '<br', '/><br', '/>',
               '"the', 'end,"')


def fake_review(label: int, rng: random.Random, min_length: int = 12, max_length: int = 40) -> str:
    length = rng.randint(min_length, max_length)
    tokens = [rng.choice(FILLER_WORDS) for _ in range(length)]
    cues, other = (POSITIVE_WORDS, NEGATIVE_WORDS) if label == 1 else (NEGATIVE_WORDS, POSITIVE_WORDS)
    words = [rng.choice(cues) for _ in range(3)]
    if rng.random() < 0.2:
        words.append(rng.choice(other))  # a mixed review: the majority still decides
    for word in words:
        tokens[rng.randrange(length)] = word
    for _ in range(rng.randint(0, 2)):
        tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(DECORATIONS))
    return ' '.join(tokens)


def make_fake_imdb(path: Optional[str], n_reviews: int, seed: int = 0) -> str:
    """CSV text of n_reviews balanced, shuffled reviews; also written to `path` unless None."""
    rng = random.Random(seed)
    labels = [i % 2 for i in range(n_reviews)]
    rng.shuffle(labels)
    out = io.StringIO(newline='')
    writer = csv.writer(out, lineterminator='\n')  # minimal quoting, as pandas writes the file
    writer.writerow(['review', 'sentiment'])
    for label in labels:
        writer.writerow([fake_review(label, rng), 'positive' if label else 'negative'])
    text = out.getvalue()
    if path is not None:
        with open(path, 'w', newline='', encoding='utf-8') as f:
            f.write(text)
    return text
