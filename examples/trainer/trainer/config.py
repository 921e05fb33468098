"""Run configuration: presets, command-line overrides and validation."""

import dataclasses

# "tiny" is what ttfb-lab runs (the workflow's shrink args pass --tiny); "full" is the
# real job, which takes many seconds to start in pure Python.
PRESETS = {
    "tiny": {
        "n_docs": 1024,
        "vocab_words": 2000,
        "min_doc_len": 8,
        "max_doc_len": 40,
        "n_buckets": 64,
        "hidden": (256, 128),
        "n_classes": 8,
        "batch_size": 32,
        "lr": 0.05,
    },
    "full": {
        "n_docs": 60000,
        "vocab_words": 40000,
        "min_doc_len": 16,
        "max_doc_len": 256,
        "n_buckets": 1024,
        "hidden": (1024, 512),
        "n_classes": 8,
        "batch_size": 256,
        "lr": 0.02,
    },
}

DEVICES = ("cpu", "cuda")


class ConfigError(ValueError):
    """The configuration is invalid; the message lists every problem."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    preset: str
    steps: int
    device: str
    seed: int
    n_docs: int
    vocab_words: int
    min_doc_len: int
    max_doc_len: int
    n_buckets: int
    hidden: tuple
    n_classes: int
    batch_size: int
    lr: float

    @property
    def n_features(self):
        """Model input width: hashed bag of words plus three document statistics."""
        return self.n_buckets + 3

    @property
    def layer_sizes(self):
        return (self.n_features,) + tuple(self.hidden) + (self.n_classes,)


def _problems(cfg):
    problems = []
    if cfg.preset not in PRESETS:
        problems.append("unknown preset %r" % cfg.preset)
    if cfg.device not in DEVICES:
        problems.append("device must be one of %s, got %r" % (", ".join(DEVICES), cfg.device))
    elif cfg.device != "cpu":
        problems.append("device %r is not available: this trainer is CPU-only" % cfg.device)
    for field in ("steps", "n_docs", "vocab_words", "min_doc_len", "n_buckets", "n_classes", "batch_size"):
        value = getattr(cfg, field)
        if not isinstance(value, int) or value < 1:
            problems.append("%s must be a positive integer, got %r" % (field, value))
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        problems.append("seed must be a non-negative integer, got %r" % (cfg.seed,))
    if isinstance(cfg.max_doc_len, int) and isinstance(cfg.min_doc_len, int) and cfg.max_doc_len < cfg.min_doc_len:
        problems.append("max_doc_len (%d) is below min_doc_len (%d)" % (cfg.max_doc_len, cfg.min_doc_len))
    if not cfg.hidden or any(not isinstance(h, int) or h < 1 for h in cfg.hidden):
        problems.append("hidden must be a non-empty list of positive integers, got %r" % (cfg.hidden,))
    if isinstance(cfg.batch_size, int) and isinstance(cfg.n_docs, int) and cfg.batch_size > cfg.n_docs:
        problems.append("batch_size (%d) exceeds the number of documents (%d)" % (cfg.batch_size, cfg.n_docs))
    if not isinstance(cfg.lr, float) or not 0.0 < cfg.lr < 10.0:
        problems.append("lr must be a float in (0, 10), got %r" % (cfg.lr,))
    return problems


def validate(cfg):
    """Raise ConfigError naming every problem of `cfg`; return `cfg` when it is valid."""
    problems = _problems(cfg)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return cfg


def build(args):
    """Build a validated TrainConfig from parsed command-line arguments."""
    preset = "tiny" if args.tiny else "full"
    values = dict(PRESETS[preset])
    if args.batch_size is not None:
        values["batch_size"] = args.batch_size
    cfg = TrainConfig(preset=preset, steps=args.steps, device=args.device, seed=args.seed, **values)
    return validate(cfg)
