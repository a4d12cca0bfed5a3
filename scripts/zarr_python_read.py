"""Describes a zarr array, or the first level of an OME-NGFF image, as zarr-python reads it.

usage: python zarr_python_read.py PATH

PATH is a zarr array directory or an OME-NGFF image group, zarr v2 or v3. For a group, the
array described is the one at `multiscales[0].datasets[0].path`, with `multiscales` taken
from the group attributes (OME-NGFF 0.4) or from their `ome` member (0.5).

Prints one JSON object on stdout:
  zarr_format       2 or 3
  shape, chunks     lists of ints; `chunks` is the read chunk shape (the inner chunk
                    shape of a sharded array), `shards` the shard shape or null
  dtype             numpy name for numbers and booleans ("uint8", "float32", "bool"),
                    otherwise the numpy type string
  fill_value        JSON value (NaN and infinities as the strings "NaN", "Infinity",
                    "-Infinity"; complex as [real, imag]; null when unset)
  attributes        the array's attributes
  sum, min, max     of all values (sum as a float; min and max null for an empty array)
  values_sha256     SHA-256 of the whole array's bytes, C order, little-endian
and, for a group, also
  group_attributes  the group's attributes
  level_path        the path of the described array inside the group
On error a message goes to stderr and the exit status is 1.
"""

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import zarr

PROG = Path(__file__).name


class ReadError(Exception):
    pass


class ArgumentParser(argparse.ArgumentParser):
    """argparse with exit status 1 on usage errors, like every other error here."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def json_value(v):
    """Converts numpy scalars and containers to plain JSON values."""
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, np.ndarray):
        return json_value(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, complex):
        return [json_value(v.real), json_value(v.imag)]
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    return v


def dtype_name(dt):
    return dt.name if dt.kind in "biufc" else dt.str


def multiscale_level_path(attrs):
    multiscales = attrs.get("multiscales")
    if multiscales is None and isinstance(attrs.get("ome"), dict):
        multiscales = attrs["ome"].get("multiscales")
    if not multiscales:
        raise ReadError("group has no OME-NGFF multiscales (neither 'multiscales' nor 'ome.multiscales')")
    try:
        return multiscales[0]["datasets"][0]["path"]
    except (KeyError, IndexError, TypeError) as e:
        raise ReadError(f"multiscales[0].datasets[0].path is missing: {e!r}") from e


def describe_array(a):
    data = np.asarray(a[...])
    dt = data.dtype
    if data.size == 0:
        total, lo, hi = 0.0, None, None
    else:
        if dt.kind in "biu" and dt.itemsize <= 4:
            total = float(int(data.sum(dtype=np.int64)))
        elif dt.kind == "c":
            total = float(data.real.sum(dtype=np.float64))
        else:
            total = float(data.sum(dtype=np.float64))
        lo, hi = data.min(), data.max()
    little = np.ascontiguousarray(data, dtype=dt.newbyteorder("<") if dt.byteorder != "|" else dt)
    return {
        "zarr_format": a.metadata.zarr_format,
        "shape": list(a.shape),
        "chunks": list(a.chunks),
        "shards": list(a.shards) if a.shards is not None else None,
        "dtype": dtype_name(dt),
        "fill_value": json_value(a.metadata.fill_value),
        "attributes": json_value(dict(a.attrs)),
        "sum": json_value(total),
        "min": json_value(lo),
        "max": json_value(hi),
        "values_sha256": hashlib.sha256(little.tobytes()).hexdigest(),
    }


def describe(path):
    if not Path(path).exists():
        raise ReadError(f"{path}: no such file or directory")
    try:
        node = zarr.open(path, mode="r")
    except Exception as e:
        raise ReadError(f"{path}: cannot open as zarr: {type(e).__name__}: {e}") from e
    if isinstance(node, zarr.Array):
        return describe_array(node)
    group_attrs = dict(node.attrs)
    level = multiscale_level_path(group_attrs)
    try:
        a = node[level]
    except KeyError as e:
        raise ReadError(f"{path}: multiscale level '{level}' not found") from e
    if not isinstance(a, zarr.Array):
        raise ReadError(f"{path}: multiscale level '{level}' is not an array")
    out = describe_array(a)
    out["group_attributes"] = json_value(group_attrs)
    out["level_path"] = level
    return out


def main(argv=None):
    p = ArgumentParser(
        prog=PROG, description="Describe a zarr array or OME-NGFF image as zarr-python reads it.")
    p.add_argument("path", metavar="PATH", help="zarr array directory or OME-NGFF image group")
    args = p.parse_args(argv)
    try:
        out = describe(args.path)
    except ReadError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        print(f"{PROG}: error: {args.path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
