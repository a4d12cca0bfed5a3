#!/usr/bin/env python3
"""Loads a checkpoint written by `segno export-weights` with DaCapo 0.3.5's own weights store
into DaCapo's model and optimizer (the 3D network of scripts/make_dacapo_fixture.py) and
compares the model's output with the fixture's. Prints the largest absolute difference;
exits 1 when DaCapo cannot load the file or the outputs differ by more than 1e-5.

    ~/segno-peer/.venv/bin/python scripts/dacapo_load_check.py EXPORTED_FILE
"""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_dacapo_fixture as fx  # noqa: E402
import torch  # noqa: E402
from dacapo.store.local_weights_store import LocalWeightsStore  # noqa: E402


def main(exported):
    torch.manual_seed(0)
    _, _, model, trainer = fx.build(fx.ARCH_3D)
    optimizer = trainer.create_optimizer(model)
    base = tempfile.mkdtemp()
    try:
        iterations = os.path.join(base, "exported", "checkpoints", "iterations")
        os.makedirs(iterations)
        shutil.copy(exported, os.path.join(iterations, "7"))
        # torch.load's default since 2.6 as well: only plain values and tensors.
        torch.load(os.path.join(iterations, "7"), map_location="cpu", weights_only=True)
        weights = LocalWeightsStore(base).retrieve_weights("exported", 7)
    finally:
        shutil.rmtree(base)
    model.load_state_dict(weights.model)
    optimizer.load_state_dict(weights.optimizer)
    io = torch.load(os.path.join(fx.OUT, "unet3d_io.pt"), weights_only=True)
    model.eval()
    with torch.no_grad():
        y = model.forward(io["input"])
    diff = (y - io["output"]).abs().max().item()
    print(f"max_abs_difference={diff}")
    return 0 if diff <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
