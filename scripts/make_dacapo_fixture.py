#!/usr/bin/env python3
"""Writes DaCapo checkpoint fixtures with DaCapo 0.3.5's own classes.

Run from the repository root with the peer venv (dacapo-ml 0.3.5, torch 2.13.0):

    ~/segno-peer/.venv/bin/python scripts/make_dacapo_fixture.py

Output goes to tests/fixtures/dacapo/ (see the README.md written there):

* unet3d.pt / unet2d.pt: checkpoints exactly as DaCapo writes them, produced by calling
  `LocalWeightsStore.store_weights` itself, i.e.
  `torch.save(Weights(model.state_dict(), optimizer.state_dict()), <run>/checkpoints/iterations/1)`.
  The file is a pickled `dacapo.store.weights_store.Weights` object, not a dict.
* unet3d_dict.pt: the same weights in the plain-dict layout {"model": ..., "optimizer": ...}
  that `LocalWeightsStore.retrieve_weights` also accepts ("backwards compatibility").
* unet3d_io.pt / unet2d_io.pt: torch.save({"input": x, "output": y}), y = model.eval()(x)
  under torch.no_grad() with the checkpoint's weights (DaCapo's Model.forward).

Models: CNNectomeUNetConfig -> CNNectomeUNet, DistanceTaskConfig -> DistanceTask,
task.create_model(architecture) (DistancePredictor: a 1x1 conv head, Model.__init__'s
kaiming init), then seeded parameter noise, then one training iteration the way
GunpowderTrainer.iterate does it (RAdam + LinearLR from GunpowderTrainer.create_optimizer,
DistanceTask's MSELoss on a random target), and store_weights(run, iteration + 1).

Deterministic: torch.manual_seed(0), CPU, float32, one thread.
"""

import argparse
import hashlib
import io
import logging
import os
import shutil
import sys
import tempfile
import zipfile

import torch

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)

import dacapo  # noqa: E402
from dacapo.experiments.architectures import CNNectomeUNetConfig  # noqa: E402
from dacapo.experiments.tasks import DistanceTaskConfig  # noqa: E402
from dacapo.experiments.trainers import GunpowderTrainerConfig  # noqa: E402
from dacapo.store.local_weights_store import LocalWeightsStore  # noqa: E402
from dacapo.store.weights_store import Weights  # noqa: E402
from funlib.geometry import Coordinate  # noqa: E402

logging.getLogger("dacapo").setLevel(logging.ERROR)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "dacapo")
MAX_FILE = 200_000
MAX_TOTAL = 600_000
NOISE = 0.05  # std of the seeded noise added to every parameter

TASK = dict(name="fixture_distance", channels=["a", "b"], clip_distance=40.0, tol_distance=40.0)
TRAINER = dict(name="fixture_trainer", batch_size=1, learning_rate=1e-4, num_data_fetchers=1)
ARCH_3D = dict(
    name="fixture_unet3d",
    input_shape=Coordinate(20, 20, 20),
    fmaps_in=1,
    num_fmaps=2,
    fmap_inc_factor=2,
    fmaps_out=3,
    downsample_factors=[Coordinate(2, 2, 2)],
    constant_upsample=True,
    padding="valid",
    use_attention=False,
    batch_norm=False,
)
ARCH_2D = dict(
    name="fixture_unet2d",
    input_shape=Coordinate(36, 28),  # 2 elements => 2D (Architecture.dims = input_shape.dims)
    fmaps_in=1,
    num_fmaps=2,
    fmap_inc_factor=2,
    fmaps_out=3,
    downsample_factors=[Coordinate(2, 2)],
    constant_upsample=False,  # ConvTranspose2d upsampling
    padding="valid",
    use_attention=True,
    batch_norm=False,
)


class FixtureRun:
    """The three attributes LocalWeightsStore.store_weights reads from a Run."""

    def __init__(self, name, model, optimizer):
        self.name, self.model, self.optimizer = name, model, optimizer

    def __str__(self):
        return self.name


def build(arch_kwargs):
    """Model, optimizer, scheduler, loss, made by DaCapo's own config classes."""
    arch_cfg = CNNectomeUNetConfig(**arch_kwargs)
    architecture = arch_cfg.architecture_type(arch_cfg)
    task_cfg = DistanceTaskConfig(**TASK)
    task = task_cfg.task_type(task_cfg)
    model = task.create_model(architecture)  # Model(architecture, Conv{2,3}d(fmaps_out, 2, 1))
    trainer_cfg = GunpowderTrainerConfig(**TRAINER)
    trainer = trainer_cfg.trainer_type(trainer_cfg)
    return arch_cfg, task, model, trainer


def make(tag, arch_kwargs, tmp):
    torch.manual_seed(0)
    arch_cfg, task, model, trainer = build(arch_kwargs)

    # seeded perturbation of every parameter (named_parameters dedups the chain.* aliases)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(NOISE * torch.randn(p.shape, dtype=p.dtype))

    # one training iteration, as GunpowderTrainer.iterate does it
    optimizer = trainer.create_optimizer(model)  # RAdam(lr 1e-4, decoupled wd) + LinearLR
    model.train()
    x_train = torch.randn((1, arch_cfg.fmaps_in) + tuple(model.input_shape))
    out_shape = (1, model.num_out_channels) + tuple(model.output_shape)
    target = torch.tanh(torch.randn(out_shape))
    weight = torch.ones(out_shape)
    for param in model.parameters():
        param.grad = None
    predicted = model.forward(x_train)
    loss = task.loss.compute(predicted, target, weight)
    loss.backward()
    optimizer.step()
    trainer.scheduler.step()

    # DaCapo's own checkpoint writer: <basedir>/<run>/checkpoints/iterations/<iteration + 1>
    store = LocalWeightsStore(tmp)
    run = FixtureRun(f"fixture_{tag}", model, optimizer)
    iteration = 1
    store.store_weights(run, iteration)
    ckpt_src = os.path.join(tmp, run.name, "checkpoints", "iterations", str(iteration))
    ckpt = os.path.join(OUT, f"{tag}.pt")
    shutil.copyfile(ckpt_src, ckpt)

    # reference forward (eval mode, no grad; DistanceTask has no eval activation)
    model.eval()
    x = torch.randn((1, arch_cfg.fmaps_in) + tuple(model.input_shape))
    with torch.no_grad():
        y = model(x)
    torch.save({"input": x, "output": y}, os.path.join(OUT, f"{tag}_io.pt"))

    files = [f"{tag}.pt", f"{tag}_io.pt"]
    if tag == "unet3d":
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict()},
            os.path.join(OUT, f"{tag}_dict.pt"),
        )
        files.append(f"{tag}_dict.pt")

    # check: DaCapo's own reader loads it into a freshly built model and reproduces y
    torch.manual_seed(1234)
    _, _, fresh, trainer2 = build(arch_kwargs)
    fresh_opt = trainer2.create_optimizer(fresh)
    fake = FixtureRun(run.name, fresh, fresh_opt)
    store.load_weights(fake, iteration)  # retrieve_weights + load_state_dict (model + optimizer)
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), y), f"{tag}: reloaded model differs"
    assert fresh_opt.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    w = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert type(w) is Weights, type(w)
    d = torch.load(os.path.join(OUT, f"{tag}_io.pt"), weights_only=True)
    assert torch.equal(d["output"], y)

    return dict(
        tag=tag,
        arch_cfg=arch_cfg,
        arch_kwargs=arch_kwargs,
        model=model,
        optimizer=optimizer,
        loss=loss.item(),
        x=x,
        y=y,
        files=files,
        param_names=[n for n, _ in model.named_parameters()],
    )


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fmt_shape(t):
    return str(tuple(t.shape))


def fmt_cfg(kwargs):
    def v(x):
        if isinstance(x, Coordinate):
            return str(tuple(x))
        if isinstance(x, list):
            return "[" + ", ".join(v(e) for e in x) + "]"
        return repr(x)

    return ", ".join(f"{k}={v(x)}" for k, x in kwargs.items())


def opt_layout(optimizer, param_names):
    osd = optimizer.state_dict()
    lines = []
    g = osd["param_groups"][0]
    lines.append(f"- top-level keys: {list(osd.keys())}")
    lines.append(f"- {len(osd['param_groups'])} param group; its keys and values:")
    for k, val in g.items():
        if k == "params":
            val = f"[0, 1, ..., {len(val) - 1}] ({len(val)} ints)"
        lines.append(f"  - `{k}`: {val!r}" if k != "params" else f"  - `{k}`: {val}")
    s0 = osd["state"][0]
    lines.append(
        f"- `state`: dict int -> dict, {len(osd['state'])} entries (one per parameter, "
        f"keys 0..{len(osd['state']) - 1}); each entry has keys {list(s0.keys())}:"
    )
    for k, val in s0.items():
        lines.append(f"  - `{k}`: {val.dtype} shape {fmt_shape(val)}" + (f" value {val.item()}" if val.dim() == 0 else ""))
    lines.append(
        "- parameter index i is the i-th entry of `model.parameters()`, i.e. of the "
        "`architecture.*` / `prediction_head.*` keys in state-dict order "
        "(the `chain.*` aliases are the same tensors and get no index):"
    )
    for i, n in enumerate(param_names):
        lines.append(f"  - {i}: `{n}`")
    return lines


def zip_records(path):
    with zipfile.ZipFile(path) as z:
        return [i.filename for i in z.infolist()]


def write_readme(results, hashes):
    r3 = results[0]
    L = []
    L.append("# DaCapo 0.3.5 checkpoint fixtures")
    L.append("")
    L.append("Written by `scripts/make_dacapo_fixture.py` with DaCapo's own classes; do not edit by hand.")
    L.append("Regenerate from the repository root (needs the peer venv, see `/work/shared/peer-bench`):")
    L.append("")
    L.append("```")
    L.append("~/segno-peer/.venv/bin/python scripts/make_dacapo_fixture.py")
    L.append("```")
    L.append("")
    L.append(f"Versions: dacapo-ml {_version('dacapo-ml')}, torch {torch.__version__}, "
             f"Python {sys.version.split()[0]}. CPU, float32, `torch.manual_seed(0)`, 1 thread.")
    L.append("")
    L.append("## Files")
    L.append("")
    L.append("| file | content | bytes | sha256 |")
    L.append("|---|---|---|---|")
    desc = {
        "unet3d.pt": "3D checkpoint exactly as DaCapo writes it (`LocalWeightsStore.store_weights`, iteration 1)",
        "unet3d_io.pt": "`{\"input\": x, \"output\": y}` for the 3D model",
        "unet3d_dict.pt": "same weights as `unet3d.pt`, plain dict `{\"model\", \"optimizer\"}` (legacy layout `retrieve_weights` also accepts)",
        "unet2d.pt": "2D checkpoint exactly as DaCapo writes it (iteration 1)",
        "unet2d_io.pt": "`{\"input\": x, \"output\": y}` for the 2D model",
    }
    for f, h in hashes.items():
        L.append(f"| `{f}` | {desc[f]} | {os.path.getsize(os.path.join(OUT, f))} | `{h[:16]}` |")
    L.append("")
    L.append("### Checkpoint layout")
    L.append("")
    L.append("`unet3d.pt` / `unet2d.pt` are `torch.save(Weights(model.state_dict(), optimizer.state_dict()), path)`")
    L.append("(torch zip format, pickle protocol 2). The pickled root is an instance of")
    L.append("`dacapo.store.weights_store.Weights`: pickle `GLOBAL 'dacapo.store.weights_store Weights'`,")
    L.append("`NEWOBJ` (via `copyreg.__newobj__`) and `BUILD` with the instance dict")
    L.append("`{\"model\": OrderedDict, \"optimizer\": dict}`. A reader must accept this class and take its")
    L.append("`model`/`optimizer` attributes; `torch.load(..., weights_only=True)` (torch's default since 2.6)")
    L.append("rejects it, so DaCapo itself loads with `weights_only=False`.")
    L.append("")
    L.append("DaCapo names the checkpoint file after the iteration (`<run>/checkpoints/iterations/1`), and")
    L.append("torch takes the zip archive's root folder from the file name, so the records inside")
    L.append("`unet3d.pt` are under `1/` (copied byte for byte), while files saved here directly use their stem:")
    L.append("")
    for f in hashes:
        recs = zip_records(os.path.join(OUT, f))
        L.append(f"- `{f}`: {len(recs)} records: " + ", ".join(f"`{r}`" for r in recs[:4]) + ", ...")
    L.append("")
    L.append("The model state dict holds every tensor twice, under two names: `architecture.*` and")
    L.append("`prediction_head.*` (Model's attributes) and `chain.0.*` and `chain.1.*` (the")
    L.append("`torch.nn.Sequential(architecture, prediction_head)` that `Model.forward` runs). Both names")
    L.append("point to the same storage (pickled once). `architecture.*` come first, then `prediction_head.*`,")
    L.append("then `chain.0.*`, `chain.1.*`. Each state dict is a `collections.OrderedDict` that also")
    L.append("gets a pickle `BUILD` setting its `_metadata` attribute (per-module `{'version': 1}`), and")
    L.append("each tensor is `torch._utils._rebuild_tensor_v2` over a `torch FloatStorage` persistent id.")
    L.append("The optimizer's `step` is a float32 0-d tensor.")
    L.append("")
    L.append("### Notes on CNNectomeUNet (0.3.5) for a reimplementation")
    L.append("")
    L.append("- 2D vs 3D comes from `len(input_shape)` (`Architecture.dims`); default kernels are `(3,)*dims`.")
    L.append("- `ConvPass` is a `Sequential` of conv (+ BatchNorm if batch_norm) + activation per kernel, so with")
    L.append("  ReLU the convs sit at indices 0 and 2 (`conv_pass.0`, `conv_pass.2`); with no activation")
    L.append("  (attention `W_g`, `W_x`) at 0 and 1.")
    L.append("- `constant_upsample=True`: `r_up.*.up` = Sequential(nn.Upsample nearest, 1x1 conv, ReLU) -> key `up.1`;")
    L.append("  `constant_upsample=False`: Sequential(ConvTranspose(kernel=stride=factor), ReLU) -> key `up.0`,")
    L.append("  weight layout (in, out, k...). With one level, in == out (4, 4) at level 0, so this fixture")
    L.append("  cannot tell in/out apart in the transposed-conv weight.")
    L.append("- Attention block (per level, `attention.<head>.<level>`): F_int = fmaps_out at level 0.")
    L.append("  `W_g` = two 1x1 convs on the coarse g; `W_x` = two 1x1 convs then MaxPool(factor) on the skip x;")
    L.append("  g1 is zero-padded (centered, extra voxel at the end) to x1's size; psi = ReLU(g1 + x1) ->")
    L.append("  1x1 conv -> Sigmoid -> 1x1 conv (1->1) -> Sigmoid (sigmoid applied twice); psi upsampled")
    L.append("  bi/trilinear with align_corners=True; skip becomes x * psi before crop + concat.")
    L.append("  In unet2d the padding path is exercised (g1 12x8 padded to 16x12).")
    L.append("- Concat order in `Upsample.forward`: `cat([cropped skip, upsampled], dim=1)`.")
    L.append("- `Model.__init__` re-initialises every `_ConvNd` (incl. transposed, attention and head convs)")
    L.append("  with `kaiming_normal_(nonlinearity='relu')` and runs one dummy forward on input_shape.")
    L.append("- The optimizer comes with `LinearLR(start_factor=0.01, total_iters=1000)`; after one")
    L.append("  `scheduler.step()` the stored `lr` is 1e-4 * (0.01 + 0.99/1000) and `initial_lr` is 1e-4.")
    L.append("")
    for r in results:
        tag = r["tag"]
        L.append(f"## {tag}")
        L.append("")
        L.append("```")
        L.append(f"CNNectomeUNetConfig({fmt_cfg(r['arch_kwargs'])})")
        L.append(f"DistanceTaskConfig({fmt_cfg(TASK)})  # head: {type(r['model'].prediction_head).__name__}, 1x1, 2 channels")
        L.append(f"GunpowderTrainerConfig({fmt_cfg(TRAINER)}).create_optimizer(model)")
        L.append("```")
        L.append("")
        L.append(f"Build: `torch.manual_seed(0)`; `task.create_model(architecture)`; every parameter "
                 f"`+= {NOISE} * randn`; one training step: `randn` input {tuple(r['x'].shape)}, target "
                 f"`tanh(randn)`, weight 1, `MSELoss().compute`, `loss.backward()`, `optimizer.step()`, "
                 f"`scheduler.step()` (loss {r['loss']:.6f}); `store_weights(run, 1)`; then x = `randn` "
                 f"{tuple(r['x'].shape)} (next draw of the same generator), y = `model.eval()(x)` under `no_grad`.")
        L.append("")
        L.append(f"- model.input_shape {tuple(r['model'].input_shape)}, model.output_shape "
                 f"{tuple(r['model'].output_shape)}, eval_input_shape {tuple(r['model'].eval_input_shape)}")
        L.append(f"- `{tag}_io.pt`: input {fmt_shape(r['x'])} float32, output {fmt_shape(r['y'])} float32 "
                 f"(sum {r['y'].sum().item():.6f}, min {r['y'].min().item():.6f}, max {r['y'].max().item():.6f})")
        n = sum(p.numel() for p in r["model"].parameters())
        L.append(f"- {n} parameters in {len(r['param_names'])} tensors")
        L.append("")
        L.append("Module structure (`print(model.architecture)`, then the head):")
        L.append("")
        L.append("```")
        L.append(str(r["model"].architecture))
        L.append(f"(prediction_head): {r['model'].prediction_head}")
        L.append("```")
        L.append("")
        L.append(f"State-dict keys ({len(r['model'].state_dict())}, in order):")
        L.append("")
        L.append("```")
        for k, v in r["model"].state_dict().items():
            L.append(f"{k}\t{fmt_shape(v)}")
        L.append("```")
        L.append("")
        L.append("Optimizer state dict (`torch.optim.RAdam`, from `GunpowderTrainer.create_optimizer`, after one step):")
        L.append("")
        L.extend(opt_layout(r["optimizer"], r["param_names"]))
        L.append("")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(L))


def _version(dist):
    from importlib.metadata import version

    return version(dist)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(make("unet3d", ARCH_3D, os.path.join(tmp, "3d")))
        results.append(make("unet2d", ARCH_2D, os.path.join(tmp, "2d")))
    names = [f for r in results for f in r["files"]]
    hashes = {f: sha256(os.path.join(OUT, f)) for f in names}
    total = 0
    for f in names:
        size = os.path.getsize(os.path.join(OUT, f))
        assert size < MAX_FILE, (f, size)
        total += size
    write_readme(results, hashes)
    total += os.path.getsize(os.path.join(OUT, "README.md"))
    assert total < MAX_TOTAL, total
    for f, h in hashes.items():
        print(f"{h}  {f}  ({os.path.getsize(os.path.join(OUT, f))} bytes)")
    print(f"total {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
