"""Synthetic corpus and its preprocessing: normalise, tokenise, featurise, standardise.

Everything is generated in memory from the configured seed, so a run is deterministic
and needs no files or network.
"""

import collections
import math
import random
import re
import unicodedata
import zlib

# Syllables include accented and full-width characters so that Unicode normalisation
# (NFKC + casefold) has real work to do, as it would on scraped text.
_SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "ta", "shi", "vo", "ze", "qu", "ba", "do",
    "fé", "gü", "hà", "jö", "Ｋa", "ｍi", "ﬁ", "ço",
)
_PUNCTUATION = (",", ".", ";", "!", "?", " -", ":")
_TOKEN_RE = re.compile(r"[^\W\d_]+|\d+")


class Dataset:
    """Standardised feature rows, their labels and the vocabulary they were built with."""

    def __init__(self, features, labels, vocab, stats):
        self.features = features
        self.labels = labels
        self.vocab = vocab
        self.stats = stats

    def __len__(self):
        return len(self.labels)


def make_vocabulary(rng, n_words):
    words = []
    seen = set()
    while len(words) < n_words:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.2:
            word = word.capitalize()
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def make_corpus(cfg):
    """Return (texts, labels): `cfg.n_docs` documents drawn from a Zipf-like distribution."""
    rng = random.Random(cfg.seed)
    words = make_vocabulary(rng, cfg.vocab_words)
    cum_weights = list(_cumulative(1.0 / (rank + 1) for rank in range(len(words))))
    texts, labels = [], []
    for _ in range(cfg.n_docs):
        n = rng.randint(cfg.min_doc_len, cfg.max_doc_len)
        doc = rng.choices(words, cum_weights=cum_weights, k=n)
        for i in range(3, n, 7):
            doc[i] += rng.choice(_PUNCTUATION)
        if rng.random() < 0.3:
            doc.append(str(rng.randint(1, 2030)))
        texts.append(" ".join(doc))
        labels.append(zlib.crc32(doc[0].casefold().encode("utf-8")) % cfg.n_classes)
    return texts, labels


def _cumulative(values):
    total = 0.0
    for v in values:
        total += v
        yield total


def normalise(text):
    return unicodedata.normalize("NFKC", text).casefold()


def tokenise(text):
    return _TOKEN_RE.findall(normalise(text))


def build_vocab(token_lists):
    """Map each token to an id, most frequent first (ties broken alphabetically)."""
    counts = collections.Counter()
    for tokens in token_lists:
        counts.update(tokens)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {token: i for i, (token, _) in enumerate(ranked)}


def featurise(ids, n_buckets):
    """Hashed, log-scaled, centred and L2-normalised bag of words plus three statistics."""
    row = [0.0] * n_buckets
    for i in ids:
        row[(i * 2654435761) % n_buckets] += 1.0
    row = [math.log1p(v) for v in row]
    mean = sum(row) / n_buckets
    row = [v - mean for v in row]
    norm = math.sqrt(sum(v * v for v in row)) or 1.0
    row = [v / norm for v in row]
    n = len(ids)
    row.append(math.log1p(n))
    row.append(len(set(ids)) / n if n else 0.0)
    row.append(sum(ids) / (n * 1000.0) if n else 0.0)
    return row


def column_stats(rows):
    """Per-column mean and standard deviation."""
    n = len(rows)
    width = len(rows[0])
    means = [0.0] * width
    for row in rows:
        for j, v in enumerate(row):
            means[j] += v
    means = [m / n for m in means]
    variances = [0.0] * width
    for row in rows:
        for j, v in enumerate(row):
            d = v - means[j]
            variances[j] += d * d
    stds = [math.sqrt(v / n) or 1.0 for v in variances]
    return means, stds


def standardise(rows):
    means, stds = column_stats(rows)
    return [[(v - m) / s for v, m, s in zip(row, means, stds)] for row in rows], (means, stds)


def build_dataset(cfg):
    texts, labels = make_corpus(cfg)
    token_lists = [tokenise(t) for t in texts]
    vocab = build_vocab(token_lists)
    rows = [featurise([vocab[t] for t in tokens], cfg.n_buckets) for tokens in token_lists]
    features, stats = standardise(rows)
    return Dataset(features, labels, vocab, stats)


def batches(dataset, batch_size, seed):
    """Yield (inputs, labels) mini-batches forever, reshuffling every epoch."""
    rng = random.Random(seed + 1)
    order = list(range(len(dataset)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            yield [dataset.features[i] for i in idx], [dataset.labels[i] for i in idx]
