"""Asks DaCapo itself to read config files written by Segno.

usage: python dacapo_interop.py DIR
DIR holds one file per config type, `<DaCapo class name>.yaml`, as written by Segno
(see scripts/dacapo-interop.sh). Each file is structured with DaCapo's own converter into
the base class of its family; DaCapo silently returns a plain dict when it cannot, so the
result's class is checked. Then DaCapo's unstructured form is compared key by key with the
file: every key DaCapo writes must be present with the same value; keys DaCapo does not
know (newer fields) are listed. Finally, for the families DaCapo stores by name, the file
is placed in a DaCapo FileConfigStore and DaCapo stores the same config again: that must
be a no-op (DaCapo raises DuplicateNameError when it sees any difference, including a
list where it expects a tuple). Exit status 1 on any failure.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import yaml
from dacapo.store.converter import converter
from dacapo.store.file_config_store import FileConfigStore
from dacapo.experiments import RunConfig
from dacapo.experiments.architectures import ArchitectureConfig
from dacapo.experiments.datasplits import DataSplitConfig
from dacapo.experiments.datasplits.datasets import DatasetConfig
from dacapo.experiments.datasplits.datasets.arrays import ArrayConfig
from dacapo.experiments.starts import StartConfig
from dacapo.experiments.tasks import TaskConfig
from dacapo.experiments.trainers import TrainerConfig
from dacapo.experiments.trainers.gp_augments import AugmentConfig

BASES = [ArrayConfig, DatasetConfig, DataSplitConfig, ArchitectureConfig, TaskConfig,
         TrainerConfig, AugmentConfig, StartConfig]


def normalise(value):
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def compare(ours, theirs, path, problems, extras):
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key, value in theirs.items():
            if key not in ours:
                problems.append(f"{path}.{key}: DaCapo writes it, Segno does not")
            else:
                compare(ours[key], value, f"{path}.{key}", problems, extras)
        for key in ours:
            if key not in theirs:
                extras.add(f"{path}.{key}".lstrip("."))
    elif isinstance(theirs, list) and isinstance(ours, list) and len(ours) == len(theirs):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(a, b, f"{path}[{i}]", problems, extras)
    elif ours != theirs:
        problems.append(f"{path or '(root)'}: Segno wrote {ours!r}, DaCapo reads {theirs!r}")


STORED = {
    "RunConfig": ("runs", "store_run_config"),
    TaskConfig: ("tasks", "store_task_config"),
    ArchitectureConfig: ("architectures", "store_architecture_config"),
    TrainerConfig: ("trainers", "store_trainer_config"),
    DataSplitConfig: ("datasplits", "store_datasplit_config"),
    ArrayConfig: ("arrays", "store_array_config"),
}


def restore_is_noop(file, obj, base):
    """DaCapo stores `obj` into a store that already holds Segno's file for it.

    Returns None for families DaCapo does not store by name, "" when DaCapo accepts the
    file as identical, otherwise what went wrong."""
    key = "RunConfig" if base is RunConfig else base
    if key not in STORED:
        return None
    collection, method = STORED[key]
    root = Path(tempfile.mkdtemp())
    try:
        store = FileConfigStore(root)
        target = root / collection / f"{obj.name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target)
        before = target.read_bytes()
        try:
            getattr(store, method)(obj)
        except Exception as exc:  # noqa: BLE001
            return f"re-storing the same config fails: {type(exc).__name__}: {str(exc)[:300]}"
        if target.read_bytes() != before:
            return "DaCapo rewrote the file"
        return ""
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(directory):
    failures = 0
    skipped = 0
    files = sorted(Path(directory).glob("*.yaml"))
    for file in files:
        tag = file.stem
        doc = yaml.full_load(file.read_text())
        base = RunConfig if tag == "RunConfig" else next(
            (b for b in BASES if any(c.__name__ == tag for c in subclasses(b))), None)
        if base is None:
            print(f"SKIP {tag}: DaCapo 0.3.5 has no such config class (or does not export it)")
            skipped += 1
            continue
        try:
            obj = converter.structure(doc, base)
        except Exception as exc:  # noqa: BLE001 - report any failure of DaCapo's reader
            print(f"FAIL {tag}: DaCapo cannot read it: {exc!r}")
            failures += 1
            continue
        if type(obj).__name__ != tag:
            print(f"FAIL {tag}: DaCapo returned a {type(obj).__name__} instead of a {tag}")
            failures += 1
            continue
        problems, extras = [], set()
        compare(normalise(doc), normalise(converter.unstructure(obj)), "", problems, extras)
        # With settings DaCapo 0.3.5 cannot hold, its copy necessarily differs.
        restore = None if extras else restore_is_noop(file, obj, base)
        if restore:
            problems.append(restore)
        if problems:
            failures += 1
            print(f"FAIL {tag}: " + "; ".join(problems))
        else:
            note = f" (keys DaCapo ignores: {', '.join(sorted(extras))})" if extras else ""
            if restore == "":
                note += " (DaCapo re-store: no-op)"
            print(f"OK   {tag}{note}")
    print(f"{len(files) - failures - skipped} passed, {failures} failed, {skipped} skipped")
    return 1 if failures else 0


def subclasses(cls):
    out = {cls}
    for sub in cls.__subclasses__():
        out |= subclasses(sub)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
