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

With --pairs N the three stay loaded in three processes (cnp bench --rounds-from-stdin, the
reference likewise) and take turns in N rounds of about --slice seconds each, the order reversed
every other round; each round's own ratios (optimized / reference, straightforward / reference)
are taken, and the table shows their medians and quartiles. A load change within seconds then
hits both sides of a ratio alike, as in bench/kernel_ab.sh for single kernels. The rounds run in
--restarts blocks (3), each with fresh processes: on this workplace's shared VM one process of
the reference ran S 1.6x faster than another minutes apart, steadily over all its rounds. The
peak is measured before and after the rounds.

usage: bench/engine_vs_reference.py [--cnp build/apps/cnp] [--variants XS,S,M,L]
         [--batch 8] [--threads 2] [--seconds 4] [--repeats 3]
         [--pairs N [--slice 0.4] [--restarts 3]] [--flip] [--precision fp32]
         [--isa native|avx2] [--peak build/bench/bench_cpu_peak]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "model")
ISA_ENVIRONMENT = {"native": {},
                   "avx2": {"CNP_CPU_ISA": "avx2", "ATEN_CPU_CAPABILITY": "avx2",
                            "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
                            "OPENBLAS_CORETYPE": "Haswell"}}


def reference(variant, batch, threads, seconds, flip, rounds=False):
    """Runs in a child process: times the Python reference; prints one JSON line (with
    rounds, serves rounds from stdin as cnp bench --rounds-from-stdin does)."""
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
    if rounds:
        serve_rounds(variant, batch, forward)
        return
    batches, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while batches < 2 or time.perf_counter() - start < seconds:
        forward()
        batches += 1
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(json.dumps({"images_per_second": batch * batches / wall,
                      "images_per_cpu_second": batch * batches / cpu}))


def serve_rounds(variant, batch, forward):
    """The reference's side of --pairs: the same protocol as cnp bench --rounds-from-stdin."""
    print(json.dumps({"variant": variant, "batch": batch}), flush=True)
    for number, line in enumerate(sys.stdin, 1):
        count = int(line)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(count):
            forward()
        seconds = time.perf_counter() - start
        print(json.dumps({"round": number, "batches": count, "seconds": seconds,
                          "cpu_seconds": time.process_time() - cpu_start,
                          "images_per_second": batch * count / seconds}), flush=True)


class RoundWorker:
    """One forward (cnp or the reference) kept loaded in a child process that runs as many
    batches as it is told and answers with one JSON line."""

    def __init__(self, command, environment):
        # stderr to a file: a pipe nobody reads until the end could fill and stall the child.
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.errors, text=True, env=environment)
        self.ready = self._answer()
        self.last = None

    def _failed(self):
        self.errors.seek(0)
        sys.exit("engine_vs_reference.py: %s exited with %d: %s" % (
            self.process.args[0], self.process.returncode, self.errors.read().strip()))

    def _answer(self):
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self._failed()
        return json.loads(line)

    def run(self, batches):
        self.process.stdin.write("%d\n" % batches)
        self.process.stdin.flush()
        self.last = self._answer()
        return self.last

    def close(self):
        self.process.stdin.close()
        if self.process.wait() != 0:
            self._failed()
        self.errors.close()


def cnp_command(cnp, variant, args, optimize):
    command = [cnp, "bench", "--variant", variant, "--batch", str(args.batch), "--threads",
               str(args.threads), "--seconds", str(args.seconds), "--precision", args.precision]
    if args.flip:
        command.append("--flip")
    if not optimize:
        command.append("--no-optimize")
    return command


def reference_command(variant, args):
    return [sys.executable, os.path.abspath(__file__), "--reference-child", variant, "--batch",
            str(args.batch), "--threads", str(args.threads), "--seconds", str(args.seconds)] + (
                ["--flip"] if args.flip else [])


def paired_rounds(variant, args):
    """--pairs: the three forwards in turn, N rounds in --restarts blocks of fresh processes;
    returns per-kind lists of round results, the ready lines, and the largest peak memory."""
    runs = {"ref": [], "plain": [], "opt": []}
    rss = {"plain": 0.0, "opt": 0.0}
    blocks = min(args.restarts, args.pairs)
    for block in range(blocks):
        environment = child_environment(args)
        workers = {"ref": RoundWorker(reference_command(variant, args) + ["--rounds"], environment),
                   "plain": RoundWorker(cnp_command(args.cnp, variant, args, False) +
                                        ["--rounds-from-stdin"], environment),
                   "opt": RoundWorker(cnp_command(args.cnp, variant, args, True) +
                                      ["--rounds-from-stdin"], environment)}
        # Batches per round: about --slice seconds each, from a second batch after the warm-up.
        counts = {k: max(1, round(args.slice / w.run(1)["seconds"])) for k, w in workers.items()}
        order = list(workers)
        for number in range(block, args.pairs, blocks):
            for kind in (order if number % 2 == 0 else order[::-1]):
                runs[kind].append(dict(workers[kind].run(counts[kind]), block=block))
        for kind, w in workers.items():
            w.close()
            if kind in rss:
                rss[kind] = max(rss[kind], w.last["max_rss_mb"])
    return runs, {k: w.ready for k, w in workers.items()}, rss


def quartiles(values):
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def with_cpu_rate(result):
    """Adds images per CPU-second to a cnp bench answer (JSON object or round line)."""
    result["images_per_cpu_second"] = (result["images_per_second"] * result["seconds"] /
                                       result["cpu_seconds"])
    return result


def run_cnp(cnp, variant, args, optimize):
    command = cnp_command(cnp, variant, args, optimize) + ["--json"]
    out = json.loads(subprocess.run(command, check=True, capture_output=True, text=True,
                                    env=child_environment(args)).stdout)
    return with_cpu_rate(out)


def run_reference(variant, args):
    return json.loads(subprocess.run(reference_command(variant, args), check=True,
                                     capture_output=True, text=True,
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
    parser.add_argument("--pairs", type=int, default=0,
                        help="alternate the three in this many short rounds (see above)")
    parser.add_argument("--slice", type=float, default=0.4,
                        help="with --pairs: seconds per process and round")
    parser.add_argument("--restarts", type=int, default=3,
                        help="with --pairs: blocks of rounds, each with fresh processes")
    parser.add_argument("--reference-child", metavar="VARIANT")
    parser.add_argument("--rounds", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_child:
        reference(args.reference_child, args.batch, args.threads, args.seconds, args.flip,
                  args.rounds)
        return
    if args.pairs < 0 or not args.slice > 0 or args.restarts < 1:
        sys.exit("engine_vs_reference.py: --pairs must be 0 or more, --slice positive and "
                 "--restarts at least 1")
    if not os.path.exists(args.cnp):
        sys.exit("engine_vs_reference.py: %s not found (build the cnp target or pass --cnp)"
                 % args.cnp)

    print("CPU: %s, %d logical CPUs, load average before: %s" % (
        cpuinfo("model name") or "unknown CPU", os.cpu_count(), " ".join("%.1f" % v for v in os.getloadavg())))
    settings = "batch %d, threads %d, flip %s, cnp precision %s" % (
        args.batch, args.threads, "on" if args.flip else "off", args.precision)
    if args.pairs:
        print("%s, %d paired rounds of ~%g s per process (order reversed every other round) in "
              "%d blocks of fresh processes; ratios: medians of the rounds' own ratios, range: "
              "their quartiles" % (settings, args.pairs, args.slice, min(args.restarts, args.pairs)))
    else:
        print("%s, %d interleaved repeats of %g s each; medians" % (settings, args.repeats,
                                                                   args.seconds))
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
        if args.pairs:
            peak_before, peak_isa = fma_peak(args)
            runs, ready, rss = paired_rounds(variant, args)
            peaks = [peak_before, fma_peak(args)[0]]
            for r in (r for kind in runs.values() for r in kind):
                with_cpu_rate(r)
            gmacs = {k: ready[k]["gmacs_per_image"] for k in ("plain", "opt")}
            cpu_kernels = ready["opt"]["cpu_kernels"]
        else:
            runs = {"ref": [], "plain": [], "opt": []}
            peaks = []
            for _ in range(args.repeats):
                peak, peak_isa = fma_peak(args)
                peaks.append(peak)
                runs["ref"].append(run_reference(variant, args))
                runs["plain"].append(run_cnp(args.cnp, variant, args, optimize=False))
                runs["opt"].append(run_cnp(args.cnp, variant, args, optimize=True))
            gmacs = {k: runs[k][-1]["gmacs_per_image"] for k in ("plain", "opt")}
            rss = {k: max(r["max_rss_mb"] for r in runs[k]) for k in ("plain", "opt")}
            cpu_kernels = runs["opt"][-1]["cpu_kernels"]
        med = {k: statistics.median(r["images_per_second"] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r["images_per_cpu_second"] for r in v)
               for k, v in runs.items()}
        peak = statistics.median(peaks) if peaks[0] else None
        # GFLOP per image; the reference does what the straightforward path does.
        flops = {k: 2 * gmacs[run] * (2 if args.flip else 1)
                 for k, run in (("ref", "plain"), ("opt", "opt"))}
        # The peak is fp32's: cnp's share and ceiling say nothing of a bf16 run (AMX).
        fp32 = args.precision == "fp32"
        share = {k: "%.0f%%" % (100 * flops[k] * med[k] / peak) if peak and (fp32 or k == "ref")
                 else "-" for k in flops}
        ceiling = "%.2fx" % (peak / (flops["opt"] * med["ref"])) if peak and fp32 else "-"
        # Each repeat's or round's own ratios (its three runs follow one another): their spread
        # says how much this machine's load moved them.
        own = {k: [o["images_per_second"] / r["images_per_second"]
                   for o, r in zip(runs[k], runs["ref"])] for k in ("plain", "opt")}
        if args.pairs:
            ratio = {k: statistics.median(own[k]) for k in own}
            spread = "%.2f-%.2fx" % quartiles(own["opt"])
        else:
            ratio = {k: med[k] / med["ref"] for k in own}
            spread = "%.2f-%.2fx" % (min(own["opt"]), max(own["opt"]))
        rows.append((variant, "%.2f" % med["ref"], "%.2f" % med["plain"], "%.2f" % med["opt"],
                     "%.2fx" % ratio["plain"], "%.2fx" % ratio["opt"], spread,
                     "%.2fx" % (cpu["opt"] / cpu["ref"]), share["ref"], share["opt"], ceiling,
                     "%.0f" % rss["opt"], "%.0f" % rss["plain"]))
        peak_text = (", fp32 FMA peak of %d threads (%s): %.0f GFLOP/s" % (
            args.threads, peak_isa, peak)) if peak else ""
        if args.pairs:  # per block of fresh processes: how much a process's own speed moved it
            peak_text += ", opt/ref per block: " + " ".join(
                "%.2fx" % statistics.median(x for x, r in zip(own["opt"], runs["ref"])
                                             if r["block"] == b)
                for b in sorted({r["block"] for r in runs["ref"]}))
        # The ratio goes out with each variant, so a run stopped early still says something.
        print("  %s done: opt/ref %s (%s) (load average %.1f, cnp's CPU kernels: %s%s)" % (
            variant, rows[-1][5], rows[-1][6], os.getloadavg()[0], cpu_kernels, peak_text),
            flush=True)
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print("images/s (wall clock); opt/ref(cpu): ratio of images per CPU-second")
    for r in [header] + rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
