"""Times zarr-python reading zarr arrays, as a reference for other readers.

usage: python zarr_python_bench.py --array PATH [--array PATH ...] [--repeats N]
                                   [--threads 1,all]

Each PATH is a zarr array directory: v2 (`.zarray`) or v3 (`zarr.json`, possibly sharded).
For every array and every thread setting two modes are timed:
  chunks  every chunk read on its own, a[slices], in a plain loop over the chunk grid
          (for a sharded array, the grid of inner chunks: zarr-python's `Array.chunks`);
  whole   the whole array in one call, a[...].
Each measurement starts with one untimed warm-up read; the reported time is the best of
--repeats timed reads. Throughput is in uncompressed MB/s (10^6 bytes of `Array.nbytes`).

Thread settings are a comma-separated list of counts, where `all` is os.cpu_count().
For a count N zarr-python is configured with
  async.concurrency = N     chunk reads and decodes in flight at once, at every level
                            (outer chunks, and inner chunks within a shard);
  threading.max_workers = N the thread pool that runs store reads and codec decodes;
and numcodecs' Blosc with set_nthreads(N). zarr-python decodes in its pool's threads,
where numcodecs runs Blosc single-threaded per chunk unless `numcodecs.blosc.use_threads`
is True; for N = 1 it is set to False so that no call runs Blosc's own threads.
zarr-python's thread pool is created once per process, on first use, and cannot be resized
afterwards, so each (array, thread setting) pair is measured in a fresh Python process.

Output: one JSON object on stdout,
  {"zarr_python": VERSION, "numcodecs": VERSION,
   "results": [{"array": PATH, "mode": "chunks"|"whole", "threads": N,
                "seconds": S, "mb_per_s": R, "bytes": B}, ...]}
On error a message goes to stderr and the exit status is 1.
"""

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

PROG = Path(__file__).name


class BenchError(Exception):
    pass


class ArgumentParser(argparse.ArgumentParser):
    """argparse with exit status 1 on usage errors, like every other error here."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def parse_threads(text):
    counts = []
    for item in text.split(","):
        item = item.strip()
        if item == "all":
            n = os.cpu_count() or 1
        else:
            try:
                n = int(item)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a thread count: {item!r} (use integers or 'all')")
            if n < 1:
                raise argparse.ArgumentTypeError(f"thread count must be at least 1, got {n}")
        if n not in counts:
            counts.append(n)
    if not counts:
        raise argparse.ArgumentTypeError("no thread count given")
    return counts


def positive_int(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def parse_args(argv):
    p = ArgumentParser(
        prog=PROG,
        description="Time zarr-python reading zarr arrays chunk by chunk and whole.",
    )
    p.add_argument("--array", action="append", required=True, metavar="PATH",
                   help="zarr array directory (v2 or v3); may be repeated")
    p.add_argument("--repeats", type=positive_int, default=3, metavar="N",
                   help="timed reads per measurement, best one reported (default 3)")
    p.add_argument("--threads", type=parse_threads, default=parse_threads("1,all"),
                   metavar="LIST",
                   help="comma-separated thread counts, 'all' = os.cpu_count() (default 1,all)")
    # Internal: measure one array with one thread count in this process.
    p.add_argument("--measure-here", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def configure_threads(n):
    """Restricts zarr-python and numcodecs to n threads; call before any zarr I/O."""
    import numcodecs.blosc
    import zarr

    zarr.config.set({"async.concurrency": n, "threading.max_workers": n})
    numcodecs.blosc.set_nthreads(n)
    if n == 1:
        numcodecs.blosc.use_threads = False


def chunk_slices(shape, chunks):
    grid = [range(math.ceil(s / c)) if c else range(1) for s, c in zip(shape, chunks)]
    for index in itertools.product(*grid):
        yield tuple(slice(i * c, min((i + 1) * c, s)) for i, s, c in zip(index, shape, chunks))


def best_time(read, repeats):
    read()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        read()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_here(path, threads, repeats):
    configure_threads(threads)
    import zarr

    try:
        a = zarr.open_array(path, mode="r")
    except Exception as e:
        raise BenchError(f"{path}: cannot open as a zarr array: {type(e).__name__}: {e}") from e
    slices = list(chunk_slices(a.shape, a.chunks))

    def read_chunks():
        for s in slices:
            a[s]

    def read_whole():
        a[...]

    results = []
    for mode, read in (("chunks", read_chunks), ("whole", read_whole)):
        try:
            seconds = best_time(read, repeats)
        except Exception as e:
            raise BenchError(f"{path}: reading ({mode}) failed: {type(e).__name__}: {e}") from e
        results.append({
            "array": path,
            "mode": mode,
            "threads": threads,
            "seconds": seconds,
            "mb_per_s": a.nbytes / 1e6 / seconds if seconds > 0 else math.inf,
            "bytes": int(a.nbytes),
        })
    return results


def check_array_path(path):
    p = Path(path)
    if not p.is_dir():
        raise BenchError(f"{path}: not a directory")
    if not ((p / "zarr.json").is_file() or (p / ".zarray").is_file()):
        raise BenchError(f"{path}: neither zarr.json nor .zarray found: not a zarr array directory")


def measure_in_child(path, threads, repeats):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure-here",
           "--array", path, "--threads", str(threads), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        message = proc.stderr.strip() or f"measurement exited with status {proc.returncode}"
        raise BenchError(message.removeprefix(f"{PROG}: error: "))
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}: unreadable measurement output: {e}") from e


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.measure_here:
            if len(args.array) != 1 or len(args.threads) != 1:
                raise BenchError("--measure-here takes one --array and one thread count")
            json.dump(measure_here(args.array[0], args.threads[0], args.repeats), sys.stdout)
            return 0
        for path in args.array:
            check_array_path(path)
        import numcodecs
        import zarr

        results = []
        for path in args.array:
            for threads in args.threads:
                results.extend(measure_in_child(path, threads, args.repeats))
        report = {"zarr_python": zarr.__version__, "numcodecs": numcodecs.__version__,
                  "results": results}
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    except BenchError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        print(f"{PROG}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
