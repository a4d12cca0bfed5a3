#!/usr/bin/env python
"""dacapo_bench.py -- time DaCapo 0.3.5 on exactly the run Segno exported.

`segno bench` calls this script with the DaCapo RunConfig YAML that Segno
writes (`segno export` / run_export.yaml) so that DaCapo and Segno are timed on
the same data, task, network, trainer and augments, side by side.  Run it with
the DaCapo venv's python (dacapo-ml 0.3.5, torch on CPU):

    ~/segno-peer/.venv/bin/python dacapo_bench.py --run RUN.yaml --project DIR \
        --mode {pipeline,model,train,predict} [--iterations N] [--warmup W] \
        [--threads 2] [--predict-input CONTAINER DATASET] [--predict-output DIR] \
        [--work DIR]

How the run is loaded
  * The YAML is read with `yaml.full_load`, the loader DaCapo's own
    FileConfigStore uses (it handles `!!python/tuple`, anchors/aliases), and
    turned into a RunConfig with `dacapo.store.converter.converter.structure(
    doc, RunConfig)`, i.e. what `FileConfigStore.retrieve_run_config` does.
    DaCapo's TypedConverter does not raise on a bad sub-config: it prints
    "Could not structure object ..." and leaves a raw dict in place.  This
    script captures that output and fails with the field and message.
  * Relative `file_name`s of ZarrArrayConfigs are resolved against --project.
  * Workaround (reported in the JSON `workarounds` list): if a
    ZarrArrayConfig's `dataset` is an OME-NGFF multiscale *group* (e.g. `raw`)
    rather than an array, funlib.persistence's open_ds fails with a bare
    AttributeError.  DaCapo's DataSplitGenerator
    (get_right_resolution_array_config) would have written `<group>/s0` in
    that case, so the script appends `/s0` (or the first multiscales path).
  * Workaround (also in `workarounds`): dacapo-ml 0.3.5's
    ConcatArrayConfig.array (the multi-channel GT that DaCapo's own
    DataSplitGenerator emits) cannot work -- `da.zeros(n, *shape)` makes a
    1-D array, then "could not broadcast input array from shape(1, z, y, x)
    into shape ()".  It is replaced in-process by a documented-semantics
    version (channel stack in `channels` order); see patch_concat_array.
  * YAML keys that are not fields of the DaCapo config class are silently
    dropped by cattrs; they are listed in `yaml_warnings` (and on stderr).
  * DaCapo's stores (options file, runs dir, daisy_logs) live in --work (a
    fresh temp dir by default, removed at exit); the cwd is --work so nothing
    is written into the Segno project.

Modes (maps 1:1 onto `segno bench --mode ...`)
  pipeline  DaCapo's GunpowderTrainer batch pipeline alone, built with
            `trainer.build_batch_provider(run.datasplit.train, model, task)`
            exactly as dacapo.train does (ArraySource -> Pad -> RandomLocation
            -> Reject -> augments -> RandomProvider -> DaCapoTargetFilter
            (target + weights) -> [PreCache(num_data_fetchers) if > 1] ->
            Stack(batch_size)); `trainer.next()` W times untimed, N timed.
            -> batches_per_sec, first_batch_seconds (build + first batch).
  model     run.model (architecture + task head, as Run builds it) in train()
            mode: zero grads, forward, task.loss, backward, run.optimizer
            (RAdam) step, trainer LinearLR scheduler step, on random input of
            (batch_size, fmaps_in, *input_shape); W untimed, N timed
            -> iterations_per_sec.  Then no_grad eval forward at
            eval_input_shape (input_shape + eval_shape_increase), batch 1,
            W untimed, N timed -> eval_voxels_per_sec (output voxels / s).
  train     `dacapo.train.train_run(run, do_validate=False)` (what
            `dacapo train -r` runs, minus validation) for W+N iterations with
            the real pipeline and model.  Per-iteration timestamps come from
            wrapping GunpowderTrainer.iterate; DaCapo's own per-iteration
            `time` is the step (fwd+loss+bwd+opt), the rest of each interval
            is waiting for the batch.  The last N intervals are timed
            -> iterations_per_sec, step_seconds_per_iter,
            wait_seconds_per_iter, first_iteration_seconds.
  predict   `dacapo.predict_local.predict(model, raw, out, output_roi)` --
            DaCapo's in-process daisy blockwise predictor (the one validation
            uses; `dacapo predict` is broken in 0.3.5, see peer-bench
            REPORT.md §7.3) with a freshly initialised model (seed 0) on
            --predict-input CONTAINER DATASET, normalised with the run's own
            raw array config (e.g. IntensitiesArrayConfig min/max).  The
            output ROI is the input ROI shrunk by the network context; blocks
            are eval_input_shape (fit="overhang", so a volume smaller than one
            block is still predicted, zero-padded).  W untimed + N timed passes
            -> output_voxels_per_sec, output_shape, seconds.  One in-process
            fix (as bench_predict.py): dacapo.tmp.create_from_identifier
            writes the output offset in voxels instead of world units.

Output: exactly one JSON line on stdout at the end,
    {"mode", "dacapo_version", "torch_version", "threads", <figures>,
     "seconds": total timed seconds, "n": N, ...}
Everything else (DaCapo's prints, tqdm, logs) goes to stderr: fd 1 is pointed
at stderr for the whole run, including gunpowder PreCache worker processes.
Exit code 1 with a "dacapo_bench: error: ..." line on failure.

CPU only: CUDA_VISIBLE_DEVICES="" and OMP/MKL/OPENBLAS_NUM_THREADS=--threads
are set before torch is imported; torch.set_num_threads(--threads),
set_num_interop_threads(1).  Seeds: random, numpy and torch are seeded with 0
(model weights and random inputs are deterministic).  Gunpowder reseeds
random/numpy per request from time.time() unless the request carries a seed,
and DaCapo's training request carries none -- so batch locations/augments vary
run to run exactly as in DaCapo training.  (Seeding the request is not an
option: gp.PreCache would then produce the same batch forever.)
"""

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

T_PROC = time.perf_counter()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------
# arguments and environment (before torch / dacapo are imported)
# ---------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Time DaCapo 0.3.5 on a RunConfig exported by Segno.")
    ap.add_argument("--run", required=True, help="DaCapo RunConfig YAML")
    ap.add_argument("--project", required=True,
                    help="Segno project dir; relative paths in the YAML are relative to it")
    ap.add_argument("--mode", required=True, choices=["pipeline", "model", "train", "predict"])
    ap.add_argument("--iterations", type=int, default=None,
                    help="timed batches/iterations/passes (default 10; predict 1)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed warm-up ones before (default 2; predict 0)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--predict-input", nargs=2, metavar=("CONTAINER", "DATASET"),
                    help="predict mode: zarr container and dataset (e.g. data/x.zarr raw/s0)")
    ap.add_argument("--predict-output", metavar="DIR",
                    help="predict mode: output dir (or a .zarr container); default <work>/predict")
    ap.add_argument("--work", metavar="DIR",
                    help="scratch dir for DaCapo's stores/logs (default: temp dir, removed)")
    a = ap.parse_args(argv)
    if a.iterations is None:
        a.iterations = 1 if a.mode == "predict" else 10
    if a.warmup is None:
        a.warmup = 0 if a.mode == "predict" else 2
    if a.iterations < 1 or a.warmup < 0 or a.threads < 1:
        ap.error("need --iterations >= 1, --warmup >= 0, --threads >= 1")
    if a.mode == "predict" and not a.predict_input:
        ap.error("--mode predict needs --predict-input CONTAINER DATASET")
    return a


def set_cpu_env(threads):
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "NUMEXPR_NUM_THREADS"):
        os.environ[k] = str(threads)
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def write_dacapo_options(work):
    """A file store + LocalTorch(cpu) options file, passed via $DACAPO_OPTIONS_FILE."""
    runs = os.path.join(work, "dacapo_runs")
    os.makedirs(runs, exist_ok=True)
    opts = os.path.join(work, "dacapo.yaml")
    with open(opts, "w") as f:
        f.write("type: files\n"
                f"runs_base_dir: {runs}\n"
                "compute_context:\n"
                "  type: LocalTorch\n"
                "  config:\n"
                "    device: cpu\n"
                "    distribute_workers: false\n")
    os.environ["DACAPO_OPTIONS_FILE"] = opts
    return runs


# ---------------------------------------------------------------------------
# loading Segno's RunConfig YAML
# ---------------------------------------------------------------------------


def load_run_config(path):
    import yaml
    from dacapo.experiments import RunConfig
    from dacapo.store.converter import converter

    with open(path) as f:
        doc = yaml.full_load(f)  # as dacapo.store.file_config_store does
    if not isinstance(doc, dict):
        raise BenchError(f"{path}: not a YAML mapping")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cfg = converter.structure(doc, RunConfig)
    msgs = buf.getvalue().strip()
    if msgs:
        log("[converter] " + msgs.replace("\n", "\n[converter] "))
    bad = find_unstructured(cfg, "run")
    if bad or not isinstance(cfg, RunConfig):
        detail = "; ".join(f"{where}: raw dict with __type__={t!r}" for where, t in bad)
        raise BenchError(
            "DaCapo's converter rejected part of the run YAML "
            f"({detail or 'top level'}). Converter said: {msgs or '(nothing)'}")
    for where in unknown_keys(doc, cfg, "run"):
        msg = f"{where}: not a field of the DaCapo config class (cattrs ignores it)"
        log("[yaml] warning: " + msg)
        YAML_WARNINGS.append(msg)
    return cfg


YAML_WARNINGS = []


def unknown_keys(doc, obj, where):
    """YAML keys the converter silently dropped (typos / fields DaCapo 0.3.5 lacks)."""
    import attr

    out = []
    if isinstance(doc, dict) and attr.has(type(obj)):
        names = {f.name for f in attr.fields(type(obj))}
        for k, v in doc.items():
            if k == "__type__":
                continue
            if k not in names:
                out.append(f"{where}.{k}")
            else:
                out += unknown_keys(v, getattr(obj, k), f"{where}.{k}")
    elif isinstance(doc, dict) and isinstance(obj, dict):
        for k, v in doc.items():
            if k in obj:
                out += unknown_keys(v, obj[k], f"{where}[{k!r}]")
    elif isinstance(doc, (list, tuple)) and isinstance(obj, (list, tuple)):
        for i, (d, o) in enumerate(zip(doc, obj)):
            out += unknown_keys(d, o, f"{where}[{i}]")
    return out


def _children(obj, where):
    import attr

    if attr.has(type(obj)):
        for fld in attr.fields(type(obj)):
            yield f"{where}.{fld.name}", getattr(obj, fld.name)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{where}[{k!r}]", v
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield f"{where}[{i}]", v


def find_unstructured(obj, where):
    """Paths where the converter left a raw dict (a sub-config it could not build)."""
    out = []
    if isinstance(obj, dict) and "__type__" in obj:
        return [(where, obj["__type__"])]
    for w, v in _children(obj, where):
        out += find_unstructured(v, w)
    return out


def iter_configs(obj, where="run"):
    """Every attrs config object in the tree."""
    import attr

    if attr.has(type(obj)):
        yield obj
    for w, v in _children(obj, where):
        yield from iter_configs(v, w)


def iter_zarr_configs(obj, where="run"):
    from dacapo.experiments.datasplits.datasets.arrays import ZarrArrayConfig

    if isinstance(obj, ZarrArrayConfig):
        yield where, obj
        return
    for w, v in _children(obj, where):
        yield from iter_zarr_configs(v, w)


def multiscale_level0(group_path):
    """'s0' (DaCapo's choice) or the first OME-NGFF multiscales path, else None."""
    if os.path.exists(os.path.join(group_path, ".zarray")):
        return None  # already an array
    if not os.path.exists(os.path.join(group_path, ".zgroup")):
        return None
    if os.path.exists(os.path.join(group_path, "s0", ".zarray")):
        return "s0"
    try:
        with open(os.path.join(group_path, ".zattrs")) as f:
            p = json.load(f)["multiscales"][0]["datasets"][0]["path"]
        if os.path.exists(os.path.join(group_path, p, ".zarray")):
            return p
    except (OSError, KeyError, IndexError, ValueError):
        pass
    return None


def fix_paths(cfg, project, workarounds):
    """Absolute zarr paths (relative to --project); multiscale group -> level array."""
    from upath import UPath

    seen = set()
    for where, z in iter_zarr_configs(cfg):
        fn = str(z.file_name)
        if not os.path.isabs(fn):
            z.file_name = UPath(os.path.normpath(os.path.join(project, fn)))
        full = os.path.join(str(z.file_name), z.dataset)
        level = multiscale_level0(full)
        if level is not None:
            msg = (f"{where}.dataset={z.dataset!r} is an OME-NGFF multiscale group, "
                   f"not an array; using {z.dataset.rstrip('/')}/{level}")
            z.dataset = f"{z.dataset.rstrip('/')}/{level}"
            if msg not in seen:
                seen.add(msg)
                log("[workaround] " + msg)
                workarounds.append(msg)
        elif not os.path.exists(os.path.join(full, ".zarray")):
            raise BenchError(f"{where}: {full} is not a zarr array")


def patch_concat_array(workarounds):
    """Replace ConcatArrayConfig.array, which is broken in dacapo-ml 0.3.5.

    0.3.5 does `da.zeros(len(arrays), *arrays[0].physical_shape)` (shape and
    chunks swapped: a 1-D array of length n_channels), then assigns each
    source's (1, z, y, x) data into a scalar slot -> "ValueError: could not
    broadcast input array from shape(1, 64, 64, 32) into shape ()", and it
    would also label the result ["c^", "c^", z, y, x] and take channels in
    source_array_configs dict order instead of `channels` order.  This
    version does what the config documents: one channel per entry of
    `channels` (in that order) from source_array_configs, else
    default_config, else zeros; each source contributes its single channel.
    """
    import dask.array as da
    from funlib.persistence import Array
    from dacapo.experiments.datasplits.datasets.arrays import ConcatArrayConfig

    def one_channel(name, a):
        if a.channel_dims == 0:
            return a.data
        if a.channel_dims == 1 and a.data.shape[0] == 1:
            return a.data[0]
        raise BenchError(f"ConcatArrayConfig source {name!r} has shape {a.data.shape}: "
                         "expected a single channel")

    def array(self, mode="r"):
        srcs = {k: c.array(mode) for k, c in self.source_array_configs.items()}
        default = self.default_config.array(mode) if self.default_config is not None else None
        ref = next(iter(srcs.values())) if srcs else default
        if ref is None:
            raise BenchError(f"ConcatArrayConfig {self.name}: no source arrays")
        for k, a in list(srcs.items()) + ([("default", default)] if default is not None else []):
            if a.roi != ref.roi or a.voxel_size != ref.voxel_size:
                raise BenchError(f"ConcatArrayConfig {self.name}: {k} has roi {a.roi} / "
                                 f"voxel size {a.voxel_size}, expected {ref.roi} / {ref.voxel_size}")
        spatial = ref.data.shape[ref.channel_dims:]
        parts = []
        for ch in self.channels:
            if ch in srcs:
                parts.append(one_channel(ch, srcs[ch]))
            elif default is not None:
                parts.append(one_channel("default", default))
            else:
                parts.append(da.zeros(spatial, dtype=ref.dtype))
        return Array(da.stack(parts, axis=0), offset=ref.offset, voxel_size=ref.voxel_size,
                     axis_names=["c^"] + [a for a in ref.axis_names if not a.endswith("^")],
                     units=ref.units)

    ConcatArrayConfig.array = array
    workarounds.append(
        "dacapo 0.3.5 ConcatArrayConfig.array is broken (da.zeros(n, *shape) -> 'could not "
        "broadcast input array from shape(1, z, y, x) into shape ()'); replaced by a channel "
        "stack in `channels` order")


# ---------------------------------------------------------------------------
# modes
# ---------------------------------------------------------------------------


def _timed_loop(fn, warmup, n, label):
    for i in range(warmup):
        t = time.perf_counter()
        fn()
        log(f"[{label}] warm-up {i}: {time.perf_counter() - t:.3f}s")
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        log(f"[{label}] {i}: {times[-1]:.3f}s")
    return times


def mode_pipeline(run, args, res):
    from dacapo.store.create_store import create_array_store

    tr = run.trainer
    res["num_data_fetchers"] = run._config.trainer_config.num_data_fetchers
    res["batch_size"] = tr.batch_size
    t0 = time.perf_counter()
    tr.build_batch_provider(run.datasplit.train, run.model, run.task,
                            create_array_store().snapshot_container(run.name))
    shapes = {}
    with tr as trainer:
        raw, gt, target, weight, mask = trainer.next()
        res["first_batch_seconds"] = time.perf_counter() - t0
        shapes = {"raw_shape": list(raw.data.shape), "target_shape": list(target.data.shape),
                  "weight_shape": list(weight.data.shape)}
        log(f"[pipeline] first batch (build + fetch) {res['first_batch_seconds']:.2f}s, "
            f"raw {raw.data.shape} {raw.data.dtype}, target {target.data.shape}, "
            f"weight {weight.data.shape}")
        # the first batch counts as one warm-up batch
        times = _timed_loop(trainer.next, max(args.warmup - 1, 0), args.iterations, "batch")
    res.update(shapes)
    s = sum(times)
    res["batches_per_sec"] = len(times) / s
    res["seconds_per_batch"] = s / len(times)
    return s


def mode_model(run, args, res):
    import numpy as np
    import torch

    model, opt, tr, loss_fn = run.model, run.optimizer, run.trainer, run.task.loss
    bs = tr.batch_size
    cin = run._config.architecture_config.fmaps_in
    cout = model.num_out_channels
    ins, outs = tuple(model.input_shape), tuple(model.output_shape)
    res.update(batch_size=bs, input_shape=list(ins), output_shape=list(outs),
               channels_in=cin, channels_out=cout,
               params=int(sum(p.numel() for p in model.parameters())))
    rng = np.random.default_rng(0)
    # training input is in [-1, 1] after IntensityScaleShift(2, -1)
    x = torch.from_numpy(rng.random((bs, cin) + ins, dtype=np.float32) * 2 - 1)
    tgt = torch.from_numpy(rng.random((bs, cout) + outs, dtype=np.float32) * 2 - 1)
    w = torch.ones((bs, cout) + outs)
    model.train()

    def step():  # as GunpowderTrainer.iterate, minus the batch fetch
        for p in model.parameters():
            p.grad = None
        pred = model.forward(x)
        loss = loss_fn.compute(pred, tgt, w)
        loss.backward()
        opt.step()
        tr.scheduler.step()
        return loss.item()

    times = _timed_loop(step, args.warmup, args.iterations, "train step")
    s = sum(times)
    res["iterations_per_sec"] = len(times) / s
    res["seconds_per_iter"] = s / len(times)

    ein = tuple(model.eval_input_shape)
    eout = tuple(model.compute_output_shape(model.eval_input_shape)[1])
    xe = torch.from_numpy(rng.random((1, cin) + ein, dtype=np.float32))
    model.eval()

    def fwd():
        with torch.no_grad():
            model.forward(xe)

    etimes = _timed_loop(fwd, args.warmup, args.iterations, "eval fwd")
    model.train()
    es = sum(etimes)
    res.update(eval_input_shape=list(ein), eval_output_shape=list(eout),
               eval_seconds=es, eval_seconds_per_forward=es / len(etimes),
               eval_voxels_per_sec=float(np.prod(eout)) * len(etimes) / es)
    return s


def mode_train(run, args, res):
    import numpy as np
    from dacapo.train import train_run

    total = args.warmup + args.iterations
    run.train_until = total
    run.validation_interval = total  # checkpoint once at the end, no validation
    cls = type(run.trainer)
    stamps, steps, losses = [], [], []
    orig = cls.iterate

    def timed_iterate(self, *a, **k):
        for stats in orig(self, *a, **k):
            stamps.append(time.perf_counter())
            steps.append(stats.time)
            losses.append(stats.loss)
            yield stats

    cls.iterate = timed_iterate
    try:
        t0 = time.perf_counter()
        train_run(run, do_validate=False)
        t_end = time.perf_counter()
    finally:
        cls.iterate = orig
    if len(stamps) != total:
        raise BenchError(f"train_run ran {len(stamps)} iterations, expected {total}")
    starts = [t0] + stamps[:-1]
    iv = [b - a for a, b in zip(starts, stamps)]
    log("[train] per-iteration wall (s): " + " ".join(f"{x:.2f}" for x in iv))
    log("[train] per-iteration step (s): " + " ".join(f"{x:.2f}" for x in steps))
    timed_iv, timed_steps = iv[args.warmup:], steps[args.warmup:]
    s = sum(timed_iv)
    res["iterations_per_sec"] = len(timed_iv) / s
    res["seconds_per_iter"] = s / len(timed_iv)
    res["step_seconds_per_iter"] = float(np.mean(timed_steps))
    res["wait_seconds_per_iter"] = res["seconds_per_iter"] - res["step_seconds_per_iter"]
    res["first_iteration_seconds"] = iv[0]  # train_run() call -> first iteration done
    res["train_run_seconds"] = t_end - t0
    res["final_loss"] = losses[-1]
    res["num_data_fetchers"] = run._config.trainer_config.num_data_fetchers
    res["batch_size"] = run.trainer.batch_size
    if args.warmup == 0:
        log("[train] warning: --warmup 0 -> the first interval includes pipeline start-up")
    return s


def _innermost_zarr_swap(raw_cfg, container, dataset):
    """Copy of the run's raw array config reading CONTAINER/DATASET instead."""
    import copy
    from upath import UPath
    from dacapo.experiments.datasplits.datasets.arrays import ZarrArrayConfig

    cfg = copy.deepcopy(raw_cfg)
    zs = list(iter_zarr_configs(cfg, "raw_config"))
    if len(zs) != 1:
        log(f"[predict] run raw config has {len(zs)} zarr sources; using a plain ZarrArrayConfig")
        return ZarrArrayConfig(name="bench_predict_raw", file_name=UPath(container),
                               dataset=dataset)
    zs[0][1].file_name = UPath(container)
    zs[0][1].dataset = dataset
    return cfg


def mode_predict(run, args, res, work):
    import numpy as np
    import torch
    from funlib.geometry import Coordinate
    from funlib.persistence import open_ds
    from upath import UPath
    import dacapo.tmp
    import dacapo.predict_local as predict_local
    from dacapo.store.local_array_store import LocalArrayIdentifier

    container, dataset = args.predict_input  # made absolute in main()
    level = multiscale_level0(os.path.join(container, dataset))
    if level is not None:
        log(f"[predict] {dataset} is a multiscale group; using {dataset}/{level}")
        dataset = f"{dataset.rstrip('/')}/{level}"
    if not os.path.exists(os.path.join(container, dataset, ".zarray")):
        raise BenchError(f"--predict-input: {container}/{dataset} is not a zarr array")

    # dacapo.tmp.create_from_identifier passes offset=roi.offset/voxel_size
    # (voxels) to prepare_ds, which takes world units: rewrite the offset.
    orig_create = dacapo.tmp.create_from_identifier

    def create_fixed(array_identifier, axis_names, roi, num_channels, voxel_size, dtype,
                     mode="a+", write_size=None, name=None, overwrite=False):
        arr = orig_create(array_identifier, axis_names, roi, num_channels, voxel_size,
                          dtype, mode=mode, write_size=write_size, name=name,
                          overwrite=overwrite)
        if arr.roi != roi:
            arr._source_data.attrs["offset"] = list(roi.offset)
            arr = open_ds(f"{array_identifier.container}/{array_identifier.dataset}",
                          mode="r+")
            log(f"[fix] create_from_identifier offset -> {roi.offset} (world units)")
        return arr

    predict_local.create_from_identifier = create_fixed

    raw_cfg = _innermost_zarr_swap(run._config.datasplit_config.train_configs[0].raw_config,
                                   container, dataset)
    raw = raw_cfg.array()
    model = run.model.to(torch.device("cpu"))
    vs = Coordinate(raw.voxel_size)
    ein = Coordinate(model.eval_input_shape)
    eout = model.compute_output_shape(ein)[1]
    out_vs = model.scale(vs)
    context = (vs * ein - out_vs * eout) / 2
    output_roi = raw.roi.grow(-context, -context)
    if output_roi.empty:
        raise BenchError(f"input {raw.roi} is smaller than the network context {context}")
    log(f"[predict] raw {raw.roi} vs {vs} dtype {raw.dtype}; block {tuple(ein)} -> "
        f"{tuple(eout)}; output roi {output_roi}")

    out_dir = args.predict_output or os.path.join(work, "predict")
    out = out_dir if out_dir.rstrip("/").endswith(".zarr") else os.path.join(
        out_dir, "dacapo_prediction.zarr")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    ds = f"prediction_{run.name}"
    ident = LocalArrayIdentifier(UPath(out), ds)

    def one_pass():
        ok = predict_local.predict(model, raw, ident, output_roi=output_roi)
        if not ok:
            raise BenchError("predict_local.predict reported failure (daisy block errors)")

    times = _timed_loop(one_pass, args.warmup, args.iterations, "predict pass")
    arr = open_ds(f"{out}/{ds}")
    data = np.asarray(arr._source_data[:])
    nvox = int(np.prod(data.shape[-3:]))
    s = sum(times)
    res.update(
        input_shape=list(raw.roi.shape / vs), output_shape=list(data.shape),
        output_roi_offset=list(arr.roi.offset), output_roi_shape=list(arr.roi.shape),
        block_input_shape=list(ein), block_output_shape=list(eout),
        output_voxels=nvox, output_voxels_per_sec=nvox * len(times) / s,
        input_voxels_per_sec=float(np.prod(raw.roi.shape / vs)) * len(times) / s,
        seconds_per_pass=s / len(times),
        covered_fraction=float((data != 0).any(axis=0).mean()),
        output_path=f"{out}/{ds}")
    return s


# ---------------------------------------------------------------------------


def main(argv=None):
    args = parse_args(argv)
    args.run = os.path.abspath(args.run)
    args.project = os.path.abspath(args.project)
    if not os.path.isfile(args.run):
        raise BenchError(f"--run {args.run}: no such file")
    if not os.path.isdir(args.project):
        raise BenchError(f"--project {args.project}: no such directory")
    if args.predict_input:  # relative: to the cwd if it exists there, else to --project
        c = args.predict_input[0]
        if not os.path.isabs(c):
            c = os.path.abspath(c) if os.path.exists(c) else os.path.join(args.project, c)
        args.predict_input = [os.path.normpath(c), args.predict_input[1]]
    if args.predict_output:
        args.predict_output = os.path.abspath(args.predict_output)
    set_cpu_env(args.threads)

    own_work = args.work is None
    work = tempfile.mkdtemp(prefix="dacapo_bench_") if own_work else os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    try:
        runs_dir = write_dacapo_options(work)
        if args.mode == "train":  # fresh run store (our own subdir only)
            shutil.rmtree(runs_dir, ignore_errors=True)
            os.makedirs(runs_dir)
        os.chdir(work)  # daisy writes ./daisy_logs

        import random
        import numpy as np
        import torch

        torch.set_num_threads(args.threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        random.seed(0)
        np.random.seed(0)
        torch.manual_seed(0)
        import importlib.metadata as md
        from dacapo.experiments import Run

        t_imported = time.perf_counter()
        workarounds = []
        cfg = load_run_config(args.run)
        fix_paths(cfg, args.project, workarounds)
        if any(type(c).__name__ == "ConcatArrayConfig" for c in iter_configs(cfg)):
            patch_concat_array(workarounds)
        torch.manual_seed(0)
        run = Run(cfg)  # task, architecture, trainer, model (+ dummy fwd), optimizer
        log(f"[run] {run.name}: model in {tuple(run.model.input_shape)} -> out "
            f"{tuple(run.model.output_shape)} x {run.model.num_out_channels} ch; "
            f"trainer batch {run.trainer.batch_size}, "
            f"fetchers {cfg.trainer_config.num_data_fetchers}, "
            f"{len(cfg.trainer_config.augments)} augments")

        res = {"mode": args.mode, "dacapo_version": md.version("dacapo-ml"),
               "torch_version": torch.__version__, "threads": torch.get_num_threads(),
               "run": run.name}
        load0 = os.getloadavg()
        if args.mode == "pipeline":
            seconds = mode_pipeline(run, args, res)
        elif args.mode == "model":
            seconds = mode_model(run, args, res)
        elif args.mode == "train":
            seconds = mode_train(run, args, res)
        else:
            seconds = mode_predict(run, args, res, work)
        res.update(seconds=seconds, n=args.iterations, warmup=args.warmup,
                   import_seconds=t_imported - T_PROC,
                   loadavg_start=[round(x, 2) for x in load0],
                   loadavg_end=[round(x, 2) for x in os.getloadavg()],
                   workarounds=workarounds, yaml_warnings=YAML_WARNINGS)
        return res
    finally:
        os.chdir("/")
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    # Keep stdout for the JSON line only: point fd 1 (also inherited by
    # gunpowder's PreCache workers and anything DaCapo prints) at stderr.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        result = main()
    except SystemExit:
        raise
    except BenchError as e:
        log(f"dacapo_bench: error: {e}")
        sys.exit(1)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        log(f"dacapo_bench: error: {type(e).__name__}: {e}")
        sys.exit(1)
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()
