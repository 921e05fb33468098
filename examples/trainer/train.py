#!/usr/bin/env python3
"""Train the example text classifier.

    python3 train.py --steps 1 --device cpu --tiny      # what ttfb-lab runs

Start-up phases are reported to ttfb-lab through ttfb_probe (a no-op outside the lab):
imports -> config -> data -> model -> first batch.
"""

import ttfb_probe

ttfb_probe.phase("imports")

import argparse
import logging
import os
import sys

from trainer import __version__
from trainer import config as config_mod
from trainer import data as data_mod
from trainer import model as model_mod

log = logging.getLogger("trainer")


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Train the example text classifier.")
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default: %(default)s)")
    parser.add_argument("--device", default=os.environ.get("TRAINER_DEVICE", "cpu"),
                        help="cpu or cuda (default: $TRAINER_DEVICE or cpu); only cpu is available")
    parser.add_argument("--tiny", action="store_true", help="use the tiny preset (small data and model)")
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    parser.add_argument("--log-level", default=os.environ.get("TRAINER_LOG_LEVEL", "info"),
                        choices=("debug", "info", "warning", "error"))
    return parser.parse_args(argv)


def main(argv=None):
    ttfb_probe.phase("config")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_mod.build(args)
    except config_mod.ConfigError as exc:
        log.error("%s", exc)
        return 2
    log.info("trainer %s, preset %s, %d steps on %s", __version__, cfg.preset, cfg.steps, cfg.device)

    ttfb_probe.phase("data")
    dataset = data_mod.build_dataset(cfg)
    loader = data_mod.batches(dataset, cfg.batch_size, cfg.seed)

    ttfb_probe.phase("model")
    net = model_mod.MLP(cfg.layer_sizes, cfg.seed)
    log.info("model %s, %d parameters", "x".join(map(str, cfg.layer_sizes)), net.n_params)

    for step in range(1, cfg.steps + 1):
        xs, ys = next(loader)
        if step == 1:
            ttfb_probe.first_batch()
            print("first batch ready: %d examples" % len(xs), flush=True)
        loss = net.train_step(xs, ys, cfg.lr)
        if step == 1 or step == cfg.steps or step % 100 == 0:
            print("step %d/%d loss %.4f" % (step, cfg.steps, loss), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
