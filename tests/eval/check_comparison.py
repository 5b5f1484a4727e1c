#!/usr/bin/env python3
"""Independent check of `cnp compare` against a sweep's samples.h5 (h5py + numpy).

usage: check_comparison.py RESULT_DIR   (after `cnp compare RESULT_DIR --output RESULT_DIR`)

Recomputes, from the stored per-sample errors only and following REFERENCE.md 6a:
every job's headline error, N-MPJPE, PCK3D@150 and AUC 0-150 overall, per action and per
joint; the paired differences against each protocol's best job with a sequence-level
bootstrap (numpy's own generator, so the intervals agree up to Monte Carlo error); the
best epoch per variant. Then checks the pictures (PNG size, SVG is XML) and that
comparison.html references only files that exist. Prints "comparison agrees" or exits 1.
"""
import html.parser
import json
import os
import sys
import xml.etree.ElementTree as ET

import cv2
import h5py
import numpy as np

ACTIONS = ["Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases",
           "Sitting", "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog",
           "WalkTogether"]
JOINTS = ["Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck",
          "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist"]
PLOT_WIDTH, PANEL_HEIGHT = 1200, 420
RESAMPLES = 20000
problems = []


def fail(msg):
    problems.append(msg)


def close(a, b, tol):
    return a is not None and abs(a - b) <= tol


def metrics_of(rows):
    """Every metric of 6a over a set of rows (all 17 joints of each sample)."""
    mp = rows["mpjpe"].astype(np.float64)
    out = {"mpjpe": mp.mean(), "pa_mpjpe": rows["pa_mpjpe"].astype(np.float64).mean(),
           "n_mpjpe": rows["n_mpjpe"].astype(np.float64).mean(),
           "pck3d_150": 100.0 * np.mean(mp < 150.0),
           "auc_0_150": 100.0 * np.mean([np.mean(mp < t) for t in np.arange(0, 151, 5)])}
    return out


def check_table(label, got, rows):
    want = metrics_of(rows)
    for k, v in want.items():
        if not close(got.get(k), v, 1e-6):
            fail("%s %s: compare says %s, numpy %.8f" % (label, k, got.get(k), v))


def headline_errors(rows, protocol):
    key = "pa_mpjpe" if protocol == 1 else "mpjpe"
    return rows[key].astype(np.float64).mean(axis=1)


def clustered(rows, values):
    keys = np.stack([rows["subject"], rows["action_idx"], rows["subaction"], rows["camera"]], 1)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(np.float64)
    return sums, counts


def bootstrap(sums, counts, rng, resamples=RESAMPLES):
    idx = rng.integers(0, len(sums), size=(resamples, len(sums)))
    stats = sums[idx].sum(1) / counts[idx].sum(1)
    return np.percentile(stats, [2.5, 97.5])


def check_interval(label, got, lo, hi, width_ref):
    # Monte Carlo error of a 2.5% quantile from 10^4 resamples is ~1% of the width.
    tol = 0.05 * max(width_ref, 1e-9) + 1e-9
    if got is None or abs(got[0] - lo) > tol or abs(got[1] - hi) > tol:
        fail("%s: compare's 95%% CI %s, numpy [%.4f, %.4f]" % (label, got, lo, hi))
        return None
    if min(abs(lo), abs(hi)) <= tol:
        return None  # too close to 0 to judge significance
    return lo > 0 or hi < 0


def paired(best_rows, other_rows, protocol):
    """(rows of best restricted to common ids, other - best per sample)"""
    common, ib, io = np.intersect1d(best_rows["image_id"], other_rows["image_id"],
                                    return_indices=True)
    d = headline_errors(other_rows[io], protocol) - headline_errors(best_rows[ib], protocol)
    return best_rows[ib], d


def main(result_dir):
    comparison = json.load(open(os.path.join(result_dir, "comparison.json")))
    samples = h5py.File(os.path.join(result_dir, "samples.h5"), "r")
    # Datasets are named like the job files (<label>_<bbox>); comparison.json labels jobs
    # without the box source (it has a bbox column).
    def label(name):
        suffix = "_" + str(samples[name].attrs["bbox"])
        return name[:-len(suffix)] if name.endswith(suffix) else name
    rows = {label(name): samples[name][()] for name in samples}
    datasets = {label(name): name for name in samples}
    rng = np.random.default_rng(1)
    jobs = {j["job"]: j for j in comparison["jobs"]}
    if set(jobs) != set(rows):
        fail("jobs %s but samples.h5 holds %s" % (sorted(jobs), sorted(rows)))
    for name, j in jobs.items():
        r = rows[name]
        attrs = samples[datasets[name]].attrs
        if attrs["protocol"] != j["protocol"] or attrs["variant"] != j["variant"]:
            fail("%s: dataset attributes disagree with the job" % name)
        if not close(j["value"], headline_errors(r, j["protocol"]).mean(), 1e-6):
            fail("%s: headline %s, numpy %.8f" % (name, j["value"], headline_errors(r, j["protocol"]).mean()))
        if j["num_samples"] != len(r):
            fail("%s: %d samples, samples.h5 has %d" % (name, j["num_samples"], len(r)))
        check_table(name, j, r)
        for a, action in enumerate(ACTIONS):
            sel = r[r["action_idx"] == a + 2]
            if len(sel):
                check_table("%s %s" % (name, action), j["per_action"].get(action, {}), sel)
        for k, joint in enumerate(JOINTS):
            got = j["per_joint"].get(joint, {})
            one = np.zeros(len(r), dtype=[("mpjpe", "f8", (1,)), ("pa_mpjpe", "f8", (1,)),
                                          ("n_mpjpe", "f8", (1,))])
            for key in ("mpjpe", "pa_mpjpe", "n_mpjpe"):
                one[key][:, 0] = r[key][:, k]
            check_table("%s %s" % (name, joint), got, one)
        s, c = clustered(r, headline_errors(r, j["protocol"]))
        lo, hi = bootstrap(s, c, rng)
        check_interval(name + " headline", j["value_ci95"], lo, hi, hi - lo)

    # Paired comparisons against each protocol's best job.
    frame_narrower = 0
    for p in comparison["paired"]:
        best, other, protocol = p["best"], p["other"], p["protocol"]
        want_best = min((j for j in jobs.values() if j["protocol"] == protocol), key=lambda j: j["value"])
        if best != want_best["job"]:
            fail("protocol %d: best is %s, numpy says %s" % (protocol, best, want_best["job"]))
        b, d = paired(rows[best], rows[other], protocol)
        if not close(p["diff_mm"], d.mean(), 1e-6):
            fail("%s vs %s: diff %s, numpy %.8f" % (other, best, p["diff_mm"], d.mean()))
        s, c = clustered(b, d)
        lo, hi = bootstrap(s, c, rng)
        sig = check_interval("%s vs %s" % (other, best), p["ci95"], lo, hi, hi - lo)
        if sig is not None and sig != p["significant"]:
            fail("%s vs %s: significant=%s, numpy says %s" % (other, best, p["significant"], sig))
        # A frame-level bootstrap ignores the correlation: its interval is narrower here,
        # so agreeing above means compare resampled sequences.
        flo, fhi = np.percentile(rng.choice(d, size=(2000, len(d))).mean(1), [2.5, 97.5])
        frame_narrower += (fhi - flo) < 0.7 * (hi - lo)
        for a, action in enumerate(ACTIONS):
            mask = b["action_idx"] == a + 2
            if not mask.any():
                continue
            cell = p["per_action"].get(action)
            if cell is None or not close(cell["diff_mm"], d[mask].mean(), 1e-6):
                fail("%s vs %s %s: diff %s, numpy %.8f" % (other, best, action, cell, d[mask].mean()))
                continue
            s, c = clustered(b[mask], d[mask])
            lo, hi = bootstrap(s, c, rng, 5000)
            check_interval("%s vs %s %s" % (other, best, action), cell["ci95"], lo, hi, hi - lo)
    if not comparison["paired"] or frame_narrower < len(comparison["paired"]) // 2:
        fail("test data do not separate sequence- from frame-level resampling")

    # Best epoch per variant and the epochs indistinguishable from it.
    for v in comparison["variants"]:
        cands = [j for j in jobs.values() if j["variant"] == v["variant"] and j["protocol"] == v["protocol"]]
        best = min(cands, key=lambda j: j["value"])
        if v["best_job"] != best["job"] or v["best_epoch"] != best["epoch"]:
            fail("%s p%d: best %s, numpy says %s" % (v["variant"], v["protocol"], v["best_job"], best["job"]))
        same = []
        for j in cands:
            if j["epoch"] == best["epoch"] or j["flip"] != best["flip"] or j["bbox"] != best["bbox"]:
                continue
            b, d = paired(rows[best["job"]], rows[j["job"]], v["protocol"])
            s, c = clustered(b, d)
            lo, hi = bootstrap(s, c, rng)
            if lo <= 0 <= hi:
                same.append(j["epoch"])
        if sorted(same) != sorted(v["indistinguishable_epochs"]):
            fail("%s p%d: indistinguishable epochs %s, numpy %s" % (v["variant"], v["protocol"], v["indistinguishable_epochs"], same))

    # Pictures and the page.
    protocols = len({j["protocol"] for j in jobs.values()})
    for name in ("epochs", "actions", "joints"):
        png = os.path.join(result_dir, name + ".png")
        img = cv2.imread(png, cv2.IMREAD_UNCHANGED)
        if img is None:
            fail("%s does not decode" % png)
        elif img.shape[:2] != (PANEL_HEIGHT * protocols, PLOT_WIDTH):
            fail("%s is %s, expected %dx%d" % (png, img.shape[:2], PLOT_WIDTH, PANEL_HEIGHT * protocols))
        elif img.std() < 10:
            fail("%s is nearly blank" % png)
        try:
            root = ET.parse(os.path.join(result_dir, name + ".svg")).getroot()
            if not root.tag.endswith("svg"):
                fail("%s.svg: root element is %s" % (name, root.tag))
        except (ET.ParseError, OSError) as e:
            fail("%s.svg is not XML: %s" % (name, e))

    class Refs(html.parser.HTMLParser):
        refs = []

        def handle_starttag(self, tag, attrs):
            for k, v in attrs:
                if k in ("src", "href"):
                    self.refs.append(v)
    parser = Refs()
    parser.feed(open(os.path.join(result_dir, "comparison.html")).read())
    if len(parser.refs) < 3:
        fail("comparison.html shows %d pictures" % len(parser.refs))
    for ref in parser.refs:
        if "://" in ref or ref.startswith("//") or not os.path.isfile(os.path.join(result_dir, ref)):
            fail("comparison.html references %s, which is not a file beside it" % ref)

    if problems:
        for p in problems[:30]:
            print("MISMATCH:", p)
        print("%d problems" % len(problems))
        return 1
    print("comparison agrees: %d jobs, %d paired comparisons, %d variants" %
          (len(jobs), len(comparison["paired"]), len(comparison["variants"])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
