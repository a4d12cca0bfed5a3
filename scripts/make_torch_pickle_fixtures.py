#!/usr/bin/env python3
"""Writes the torch.save fixtures used by the tests in src/weights/torch_pickle.rs.

Run with a Python that has PyTorch (and numpy, for the numpy-scalar object):

    python scripts/make_torch_pickle_fixtures.py

Every file goes into the folder of this script, and `expected.json` records what the
Rust reader must find in them: for each tensor its key, dtype, shape, its contiguous
row-major bytes as hex and its values converted to float32.
"""

import argparse
import collections
import json
import os

import numpy as np
import torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "torch")
DTYPE_NAMES = {
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.int16: "I16",
    torch.int32: "I32",
    torch.int64: "I64",
    torch.bool: "Bool",
}


def describe(key, t):
    """Expected-values record for one tensor (key may be None)."""
    t = t.detach()
    flat = t.contiguous().reshape(-1)
    raw = bytes(flat.view(torch.uint8).tolist()) if flat.numel() else b""
    return {
        "key": key,
        "dtype": DTYPE_NAMES[t.dtype],
        "shape": list(t.shape),
        "hex": raw.hex(),
        "f32": flat.float().tolist(),
    }


def describe_dict(d):
    return [describe(k, v) for k, v in d.items()]


def save(obj, name, **kwargs):
    path = os.path.join(HERE, name)
    torch.save(obj, path, **kwargs)
    size = os.path.getsize(path)
    assert size < 50_000, (name, size)
    return path


def main():
    torch.manual_seed(0)
    expected = {"torch_version": torch.__version__}

    # 1. a plain state_dict
    model = torch.nn.Sequential(
        torch.nn.Conv3d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv3d(2, 1, 1)
    )
    sd = model.state_dict()
    save(sd, "plain_state_dict.pt")
    expected["plain_state_dict.pt"] = {"tensors": describe_dict(sd)}

    # 2. a DaCapo-style checkpoint: model, optimizer after one step, iteration
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(1, 1, 5, 5, 5)
    model(x).sum().backward()
    opt.step()
    sd = model.state_dict()
    osd = opt.state_dict()
    save({"model": sd, "optimizer": osd, "iteration": 7}, "dacapo_checkpoint.pt")
    expected["dacapo_checkpoint.pt"] = {
        "model": describe_dict(sd),
        "iteration": 7,
        "lr": osd["param_groups"][0]["lr"],
        "betas": list(osd["param_groups"][0]["betas"]),
        "params": osd["param_groups"][0]["params"],
        "state": [
            {
                "param": k,
                "step": describe(None, v["step"]),
                "exp_avg": describe(None, v["exp_avg"]),
                "exp_avg_sq": describe(None, v["exp_avg_sq"]),
            }
            for k, v in osd["state"].items()
        ],
    }

    # 3. dtypes, views, shared storage, scalar, empty
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
    shared = torch.arange(10, dtype=torch.int32)
    tensors = {
        "f32": torch.tensor([1.5, -2.25, 3.0e-8, 65504.0]),
        "f16": torch.tensor([1.5, -2.25, 0.1, 65504.0, 6.0e-8], dtype=torch.float16),
        "bf16": torch.tensor([1.5, -2.25, 0.1, 3.0e38], dtype=torch.bfloat16),
        "f64": torch.tensor([[0.1, -1e300], [2.5, 1.0 / 3.0]], dtype=torch.float64),
        "i64": torch.tensor([0, -5, 2**62 + 1, -(2**63)], dtype=torch.int64),
        "i32": torch.tensor([7, -2**31, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False, True], [False, False, True]]),
        "transposed": base.t(),
        "sliced": base[1:3, 2:5],
        "strided": base[::2, ::3],
        "expanded": torch.tensor([[1.0], [2.0]]).expand(2, 3),
        "shared_a": shared[:4],
        "shared_b": shared[4:].view(2, 3),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
    }
    assert tensors["sliced"].storage_offset() != 0
    assert not tensors["sliced"].is_contiguous()
    assert not tensors["transposed"].is_contiguous()
    assert tensors["shared_b"].storage_offset() == 4
    assert (
        tensors["shared_a"].untyped_storage().data_ptr()
        == tensors["shared_b"].untyped_storage().data_ptr()
    )
    save(tensors, "dtypes.pt")
    expected["dtypes.pt"] = {
        "tensors": describe_dict(tensors),
        "sliced_storage_offset": tensors["sliced"].storage_offset(),
    }

    # 4. the legacy (pre-1.6) format
    save({"w": torch.ones(2)}, "legacy.pt", _use_new_zipfile_serialization=False)

    # 5. objects that are not tensors, in pickle protocols 2 (torch's default), 4 and 1
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    p.tag = "param-attr"
    t = torch.tensor([4.0, 5.0])
    t.note = 1
    same_list = [1, "two"]
    misc = {
        "namespace": argparse.Namespace(lr=0.5, name="unet"),
        "np_scalar": np.float32(1.5),
        "defaultdict": collections.defaultdict(list, {"a": [1]}),
        "size": torch.Size([2, 3]),
        "set": {1, 2},
        "frozenset": frozenset([3]),
        "bytes": b"\x00\xffab",
        "empty_bytes": b"",
        "param_with_attr": p,
        "tensor_with_attr": t,
        "nested": [None, True, False, (1, 2.5, "s"), {"k": [2**40, -(2**40)]}],
        "unicode": "h\u00e9llo \u2713",
        "dtype": torch.float32,
        "same_a": same_list,
        "same_b": same_list,
    }
    for proto, name in [(2, "misc_objects.pt"), (4, "misc_objects_p4.pt"), (1, "misc_objects_p1.pt")]:
        save(misc, name, pickle_protocol=proto)

    # 6. a dtype only the newer UntypedStorage + dtype form (_rebuild_tensor_v3) can hold
    save({"u16": torch.tensor([1, 2], dtype=torch.uint16)}, "uint16.pt")

    # 7. CRC-32s left out (torch.serialization.set_crc32_options(False) writes 0s)
    torch.serialization.set_crc32_options(False)
    try:
        nocrc = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
        save(nocrc, "no_crc32.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    expected["no_crc32.pt"] = {"tensors": describe_dict(nocrc)}

    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
