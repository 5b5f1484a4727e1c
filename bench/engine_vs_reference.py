#!/usr/bin/python3
"""Forward speed of cnp (straightforward and optimized) against the reference PyTorch
forward of the same architecture, in one run on this machine.

The reference is the independent Python implementation of the parity tests
(tests/model/make_fixtures.py: network + float32 soft-argmax), run with Debian's
python3-torch (same LibTorch build and BLAS as cnp). For each variant the three are run
in turn, `--repeats` times interleaved (so that load changes hit all three alike), each
in its own process, and the table shows medians: images/s (wall clock), images per
CPU-second (all threads' processor time: steadier on a shared machine), and cnp's
ratios to the reference, with the range of the repeats' own ratios.

With --precision bf16, cnp runs in bf16 (native on CPUs with AVX512_BF16/AMX) while the
reference stays fp32, so the ratios show what bf16 buys over the fp32 reference.

With --isa avx2 every process (cnp and the reference) is held to AVX2 on an AVX-512 machine:
cnp's kernels through CNP_CPU_ISA=avx2, LibTorch's ATen through ATEN_CPU_CAPABILITY=avx2, its
oneDNN convolutions through ONEDNN_MAX_CPU_ISA/DNNL_MAX_CPU_ISA=AVX2 and OpenBLAS through
OPENBLAS_CORETYPE=Haswell; the nearest this machine gets to an AVX2-only CPU.

OpenBLAS picks its kernels by CPU model, and a release older than the CPU (Debian's 0.3.21 on
this workplace's Xeon, model 207) falls back to its SSE3 "Prescott" kernels. LibTorch 1.13 runs
convolutions through BLAS on one thread, so the reference (and cnp's straightforward path) would
run about 3x slower than the CPU allows. Where OpenBLAS reports Prescott on a CPU with AVX2, every
process gets OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2), and the header says so; an
OPENBLAS_CORETYPE already set is left alone.

Against the CPU's fp32 FMA peak (bench/bench_cpu_peak, same threads and instruction set,
measured again in every repeat): each forward's GFLOP/s as a share of it (the reference does
the published multiply-adds, cnp's optimized path fewer for M and L), and the "ceiling", the
ratio to the reference that cnp would reach at 100% of the peak. A target above the ceiling cannot be met by
faster kernels, only by less arithmetic (or a lower precision).

usage: bench/engine_vs_reference.py [--cnp build/apps/cnp] [--variants XS,S,M,L]
         [--batch 8] [--threads 2] [--seconds 4] [--repeats 3] [--flip] [--precision fp32]
         [--isa native|avx2] [--peak build/bench/bench_cpu_peak]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "model")
ISA_ENVIRONMENT = {"native": {},
                   "avx2": {"CNP_CPU_ISA": "avx2", "ATEN_CPU_CAPABILITY": "avx2",
                            "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
                            "OPENBLAS_CORETYPE": "Haswell"}}


def reference(variant, batch, threads, seconds, flip):
    """Runs in a child process: times the Python reference; prints one JSON line."""
    sys.path.insert(0, FIXTURES)
    import numpy as np
    import torch
    import make_fixtures as ref

    torch.set_num_threads(threads)
    depths, dims, channels, ups, depth_dim, scheme, _ = ref.VARIANTS[variant]
    torch.manual_seed(0)
    net = ref.PoseNet(depths, dims, channels, ups, depth_dim, scheme).eval()
    images = ref.image_like_batch(np.random.RandomState(7), batch)

    def forward():
        with torch.no_grad():
            x = torch.cat([images, torch.flip(images, dims=[3])]) if flip else images
            return ref.soft_argmax(net(x), depth_dim, dtype=torch.float32)

    forward()  # warm-up
    batches, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while batches < 2 or time.perf_counter() - start < seconds:
        forward()
        batches += 1
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(json.dumps({"images_per_second": batch * batches / wall,
                      "images_per_cpu_second": batch * batches / cpu}))


def run_cnp(cnp, variant, args, optimize):
    command = [cnp, "bench", "--variant", variant, "--batch", str(args.batch), "--threads",
               str(args.threads), "--seconds", str(args.seconds), "--precision", args.precision,
               "--json"]
    if args.flip:
        command.append("--flip")
    if not optimize:
        command.append("--no-optimize")
    out = json.loads(subprocess.run(command, check=True, capture_output=True, text=True,
                                    env=child_environment(args)).stdout)
    out["images_per_cpu_second"] = out["images_per_second"] * out["seconds"] / out["cpu_seconds"]
    return out


def run_reference(variant, args):
    command = [sys.executable, os.path.abspath(__file__), "--reference-child", variant,
               "--batch", str(args.batch), "--threads", str(args.threads), "--seconds",
               str(args.seconds)] + (["--flip"] if args.flip else [])
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True,
                                     env=child_environment(args)).stdout.strip().splitlines()[-1])


def child_environment(args):
    return dict(os.environ, **args.environment)


def cpuinfo(field):
    """The first value of `field` in /proc/cpuinfo ("model name", "flags"), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def openblas_core():
    """The core OpenBLAS picks for this CPU in the reference's process ("Prescott", "Haswell",
    ...; None if it does not say)."""
    out = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True,
                         env=dict(os.environ, OPENBLAS_VERBOSE="2"))
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("Core:"):
            return line.split(":", 1)[1].strip()
    return None


def openblas_override():
    """OPENBLAS_CORETYPE for a CPU that OpenBLAS mistakes for an SSE3 one, else {}."""
    if "OPENBLAS_CORETYPE" in os.environ or openblas_core() != "Prescott":
        return {}
    flags = set((cpuinfo("flags") or "").split())
    if "avx512f" in flags:
        return {"OPENBLAS_CORETYPE": "SkylakeX"}
    return {"OPENBLAS_CORETYPE": "Haswell"} if "avx2" in flags else {}


def fma_peak(args):
    """GFLOP/s of all `threads` threads at the instruction set the kernels run at, or None.
    Measured again in every repeat: on a shared machine the peak moves with the load."""
    if not os.path.exists(args.peak):
        return None, None
    out = json.loads(subprocess.run([args.peak, "--threads", str(args.threads), "--seconds",
                                     "0.5", "--json"],
                                    check=True, capture_output=True, text=True).stdout)
    isa = "avx2" if args.isa == "avx2" or out["avx512_gflops_per_thread"] is None else "avx512"
    per_thread = out[isa + "_gflops_per_thread"]
    return (per_thread * args.threads if per_thread else None), isa


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnp", default=os.path.join(HERE, "..", "build", "apps", "cnp"))
    parser.add_argument("--variants", default="XS,S,M,L")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                        help="cnp's precision (the reference is always fp32)")
    parser.add_argument("--isa", default="native", choices=sorted(ISA_ENVIRONMENT),
                        help="hold cnp and the reference to AVX2 (see above)")
    parser.add_argument("--peak", default=os.path.join(HERE, "..", "build", "bench",
                                                       "bench_cpu_peak"))
    parser.add_argument("--reference-child", metavar="VARIANT")
    args = parser.parse_args()
    if args.reference_child:
        reference(args.reference_child, args.batch, args.threads, args.seconds, args.flip)
        return
    if not os.path.exists(args.cnp):
        sys.exit("engine_vs_reference.py: %s not found (build the cnp target or pass --cnp)"
                 % args.cnp)

    print("CPU: %s, %d logical CPUs, load average before: %s" % (
        cpuinfo("model name") or "unknown CPU", os.cpu_count(), " ".join("%.1f" % v for v in os.getloadavg())))
    print("batch %d, threads %d, flip %s, cnp precision %s, %d interleaved repeats of %g s "
          "each; medians" % (args.batch, args.threads, "on" if args.flip else "off",
                             args.precision, args.repeats, args.seconds))
    args.environment = dict(ISA_ENVIRONMENT[args.isa])
    if args.isa == "native":
        args.environment.update(openblas_override())
        if args.environment:
            print("OpenBLAS takes this CPU for an SSE3 one (Prescott): every process gets %s"
                  % " ".join("%s=%s" % kv for kv in args.environment.items()))
    print("instruction sets: %s" % (" ".join("%s=%s" % kv for kv in ISA_ENVIRONMENT[args.isa].items())
                                    or "the CPU's best"))
    if not os.path.exists(args.peak):
        print("fp32 FMA peak: %s not found (build bench_cpu_peak or pass --peak)" % args.peak)
    header = ("variant", "reference", "straightfwd", "optimized", "straight/ref", "opt/ref",
              "opt/ref range", "opt/ref(cpu)", "ref %peak", "opt %peak", "ceiling", "opt peak MB",
              "straight peak MB")
    rows = []
    for variant in args.variants.split(","):
        runs = {"ref": [], "plain": [], "opt": []}
        peaks = []
        for _ in range(args.repeats):
            peak, peak_isa = fma_peak(args)
            peaks.append(peak)
            runs["ref"].append(run_reference(variant, args))
            runs["plain"].append(run_cnp(args.cnp, variant, args, optimize=False))
            runs["opt"].append(run_cnp(args.cnp, variant, args, optimize=True))
        med = {k: statistics.median(r["images_per_second"] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r["images_per_cpu_second"] for r in v)
               for k, v in runs.items()}
        peak = statistics.median(peaks) if peaks[0] else None
        # GFLOP per image; the reference does what the straightforward path does.
        flops = {k: 2 * runs[run][-1]["gmacs_per_image"] * (2 if args.flip else 1)
                 for k, run in (("ref", "plain"), ("opt", "opt"))}
        # The peak is fp32's: cnp's share and ceiling say nothing of a bf16 run (AMX).
        fp32 = args.precision == "fp32"
        share = {k: "%.0f%%" % (100 * flops[k] * med[k] / peak) if peak and (fp32 or k == "ref")
                 else "-" for k in flops}
        ceiling = "%.2fx" % (peak / (flops["opt"] * med["ref"])) if peak and fp32 else "-"
        # Each repeat's own ratio (its three runs follow one another): the spread says how
        # much this machine's load moved the ratio.
        paired = [o["images_per_second"] / r["images_per_second"]
                  for o, r in zip(runs["opt"], runs["ref"])]
        rows.append((variant, "%.2f" % med["ref"], "%.2f" % med["plain"], "%.2f" % med["opt"],
                     "%.2fx" % (med["plain"] / med["ref"]), "%.2fx" % (med["opt"] / med["ref"]),
                     "%.2f-%.2fx" % (min(paired), max(paired)),
                     "%.2fx" % (cpu["opt"] / cpu["ref"]), share["ref"], share["opt"], ceiling,
                     "%.0f" % max(r["max_rss_mb"] for r in runs["opt"]),
                     "%.0f" % max(r["max_rss_mb"] for r in runs["plain"])))
        peak_text = (", fp32 FMA peak of %d threads (%s): %.0f GFLOP/s" % (
            args.threads, peak_isa, peak)) if peak else ""
        # The ratio goes out with each variant, so a run stopped early still says something.
        print("  %s done: opt/ref %s (%s) (load average %.1f, cnp's CPU kernels: %s%s)" % (
            variant, rows[-1][5], rows[-1][6], os.getloadavg()[0], runs["opt"][-1]["cpu_kernels"],
            peak_text), flush=True)
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print("images/s (wall clock); opt/ref(cpu): ratio of images per CPU-second")
    for r in [header] + rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
