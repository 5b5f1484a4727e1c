#!/usr/bin/python3
"""Independent check of a finished sweep's results (REFERENCE.md sections 4-6).

For every <output>/jobs/*.json: reads predictions/<stem>.json, rebuilds the ground
truth from the raw Human3.6M annotation files (world -> camera, Thorax added,
root-relative, Thorax dropped; subjects per protocol; frame_idx % sample_every == 0;
ground-truth boxes sanitized as the reference does), recomputes the headline metric
(protocol 2: MPJPE of the unaligned predictions; protocol 1: error of the already
aligned predictions), its per-action and per-joint means, and checks num_samples,
image ids, root_cam and bbox. In a sweep's own output (run_summary.json present) it
also checks samples.h5 (per-sample joint errors, same image ids; for protocol 2 the
N-MPJPE, PCK3D@150 and AUC of REFERENCE 6a) and the summary's provenance. Exits 1 naming
the job on any mismatch above the tolerance; prints "OK <n> jobs" otherwise.

Usage: check_sweep_results.py --dataset ROOT --output RESULT_DIR
       [--bbox-root-p1 FILE] [--bbox-root-p2 FILE] [--tolerance MM]
"""
import argparse
import glob
import json
import os
import sys

import numpy as np

JOINTS = ["Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck",
          "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist"]
ACTIONS = ["Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases",
           "Sitting", "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog",
           "WalkTogether"]
L_SHOULDER, R_SHOULDER = 11, 14
SUBJECTS = {1: [11], 2: [9, 11]}


class Mismatch(Exception):
    pass


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Mismatch("%s: cannot read JSON: %s" % (path, e))


def process_gt_bbox(bbox, width, height):
    """Sanitize, square up and enlarge a ground-truth box; None when unusable."""
    x, y, w, h = bbox
    x1 = max(0.0, x)
    y1 = max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if w * h <= 0 or x2 < x1 or y2 < y1:
        return None
    x, y, w, h = x1, y1, x2 - x1, y2 - y1
    cx, cy = x + w / 2.0, y + h / 2.0
    if w > h:
        h = w
    elif w < h:
        w = h
    w, h = w * 1.25, h * 1.25
    return [cx - w / 2.0, cy - h / 2.0, w, h]


class Dataset:
    def __init__(self, root):
        self.root = root
        self.subjects = {}

    def subject(self, s):
        """{image_id: record} for one subject, every frame."""
        if s in self.subjects:
            return self.subjects[s]
        ann_dir = os.path.join(self.root, "annotations")
        data = load_json(os.path.join(ann_dir, "Human36M_subject%d_data.json" % s))
        cams = load_json(os.path.join(ann_dir, "Human36M_subject%d_camera.json" % s))
        joints = load_json(os.path.join(ann_dir, "Human36M_subject%d_joint_3d.json" % s))
        anns = {a["image_id"]: a for a in data["annotations"]}
        records = {}
        for img in data["images"]:
            cam = cams[str(img["cam_idx"])]
            world = np.array(joints[str(img["action_idx"])][str(img["subaction_idx"])][str(img["frame_idx"])],
                             dtype=np.float64)
            cam_joints = (np.array(cam["R"], dtype=np.float64) @ world.T).T + np.array(cam["t"], dtype=np.float64)
            thorax = (cam_joints[L_SHOULDER] + cam_joints[R_SHOULDER]) / 2.0
            cam_joints = np.vstack([cam_joints, thorax])
            records[img["id"]] = {
                "frame": img["frame_idx"],
                "action_idx": img["action_idx"],
                "width": img["width"],
                "height": img["height"],
                "bbox": anns[img["id"]]["bbox"],
                "joints_cam": cam_joints,
            }
        self.subjects[s] = records
        return records

    def test_set(self, protocol, sample_every, bbox):
        out = {}
        for s in SUBJECTS[protocol]:
            for image_id, r in self.subject(s).items():
                if r["frame"] % sample_every != 0:
                    continue
                if bbox == "gt":
                    box = process_gt_bbox(r["bbox"], r["width"], r["height"])
                    if box is None:
                        continue
                    r = dict(r, processed_bbox=box)
                out[image_id] = r
        return out


def close(a, b, tol):
    return abs(a - b) <= tol


def check_job(job_file, output, dataset, bbox_roots, tol):
    job = load_json(job_file)
    try:
        j = job["job"]
        protocol, bbox = j["protocol"], j["bbox"]
        metrics = job["metrics"]
        headline = metrics["headline"]
        num_samples = metrics["num_samples"]
        sample_every = job.get("settings", {}).get("sample_every", 64)
        skipped = job.get("skipped_samples", 0)
    except (KeyError, TypeError) as e:
        raise Mismatch("missing key %s" % e)
    label = "%s_e%d_p%d_%s" % (j["variant"], j["epoch"], protocol, "flip" if j["flip"] else "noflip")
    # Files are named <label>_<bbox>.json; results from before the box source was in
    # the name are <label>.json.
    stem = os.path.basename(job_file)[:-len(".json")]
    if stem not in (label + "_" + bbox, label):
        raise Mismatch("file name does not match its job (%s_%s)" % (label, bbox))
    want_headline = {1: "pa_mpjpe", 2: "mpjpe"}[protocol]
    if headline != want_headline:
        raise Mismatch("headline is %s, expected %s" % (headline, want_headline))

    preds = load_json(os.path.join(output, "predictions", stem + ".json"))
    if not isinstance(preds, list):
        raise Mismatch("predictions are not a list")
    if len(preds) != num_samples:
        raise Mismatch("num_samples %d but %d predictions" % (num_samples, len(preds)))

    expected = dataset.test_set(protocol, sample_every, bbox)
    ids = [p["image_id"] for p in preds]
    if len(set(ids)) != len(ids):
        raise Mismatch("duplicate image ids in predictions")
    unknown = sorted(set(ids) - set(expected))
    if unknown:
        raise Mismatch("image ids not in the protocol %d test set: %s" % (protocol, unknown[:5]))
    missing = sorted(set(expected) - set(ids))
    if len(missing) > skipped:
        raise Mismatch("%d test samples missing from predictions (skipped_samples %d), e.g. %s"
                       % (len(missing), skipped, missing[:5]))

    rootnet = None
    if bbox == "detected" and bbox_roots.get(protocol):
        rootnet = {e["image_id"]: e for e in load_json(bbox_roots[protocol])}

    per_action = {}
    per_joint = []
    sample_means = []
    n_errors = []
    for p in preds:
        r = expected[p["image_id"]]
        gt = r["joints_cam"] - r["joints_cam"][0]
        gt = gt[:17]  # drop Thorax
        pred = np.array(p["joint_cam"], dtype=np.float64)
        if pred.shape != (17, 3):
            raise Mismatch("image %d: joint_cam has shape %s, expected 17 x 3" % (p["image_id"], pred.shape))
        err = np.sqrt(((pred - gt) ** 2).sum(axis=1))
        # N-MPJPE (REFERENCE 6a): least-squares scale of the root-relative prediction.
        denom = (pred * pred).sum()
        scale = (pred * gt).sum() / denom if denom > 0 else 1.0
        n_errors.append(np.sqrt(((scale * pred - gt) ** 2).sum(axis=1)))
        sample_means.append(err.mean())
        per_joint.append(err)
        per_action.setdefault(ACTIONS[r["action_idx"] - 2], []).append(err.mean())
        root = np.array(p["root_cam"], dtype=np.float64)
        box = np.array(p["bbox"], dtype=np.float64)
        if bbox == "gt":
            want_root, want_box = r["joints_cam"][0], np.array(r["processed_bbox"])
        elif rootnet is not None:
            if p["image_id"] not in rootnet:
                raise Mismatch("image %d is not in the RootNet file" % p["image_id"])
            e = rootnet[p["image_id"]]
            want_root, want_box = np.array(e["root_cam"], dtype=np.float64), np.array(e["bbox"], dtype=np.float64)
        else:
            want_root = want_box = None
        if want_root is not None:
            if np.abs(root - want_root).max() > tol:
                raise Mismatch("image %d: root_cam %s, expected %s" % (p["image_id"], root.tolist(), want_root.tolist()))
            if np.abs(box - want_box).max() > tol:
                raise Mismatch("image %d: bbox %s, expected %s" % (p["image_id"], box.tolist(), want_box.tolist()))

    value = float(np.mean(sample_means))
    if headline not in metrics or not close(metrics[headline], value, tol):
        raise Mismatch("%s is %s, recomputed %.6f" % (headline, metrics.get(headline), value))
    reported = metrics.get("per_action", {})
    if set(reported) != set(per_action):
        raise Mismatch("per_action lists %s, predictions cover %s" % (sorted(reported), sorted(per_action)))
    for action, values in per_action.items():
        got = reported[action].get(headline)
        if got is None or not close(got, float(np.mean(values)), tol):
            raise Mismatch("per_action %s %s is %s, recomputed %.6f" % (action, headline, got, np.mean(values)))
    joint_means = np.mean(np.array(per_joint), axis=0)
    for k, name in enumerate(JOINTS):
        got = metrics.get("per_joint", {}).get(name, {}).get(headline)
        if got is None or not close(got, float(joint_means[k]), tol):
            raise Mismatch("per_joint %s %s is %s, recomputed %.6f" % (name, headline, got, joint_means[k]))
    if protocol == 2:  # unaligned predictions: the 6a metrics can be recomputed
        errs = np.array(per_joint)
        want = {"n_mpjpe": float(np.mean(n_errors)), "pck3d_150": 100.0 * float(np.mean(errs < 150)),
                "auc_0_150": 100.0 * float(np.mean([np.mean(errs < t) for t in range(0, 151, 5)]))}
        for name, value in want.items():
            if name in metrics and not close(metrics[name], value, tol):
                raise Mismatch("%s is %s, recomputed %.6f" % (name, metrics[name], value))
    if os.path.exists(os.path.join(output, "run_summary.json")):
        check_samples(output, stem, j, ids, np.array(per_joint), np.array(n_errors), tol)


def check_samples(output, stem, job, ids, joint_errors, n_errors, tol):
    """samples.h5 holds this job's per-joint errors for exactly its predictions."""
    import h5py
    path = os.path.join(output, "samples.h5")
    if not os.path.exists(path):
        raise Mismatch("the sweep wrote no samples.h5")
    with h5py.File(path, "r") as f:
        if stem not in f:
            raise Mismatch("samples.h5 has no dataset %s" % stem)
        d = f[stem]
        rows = d[()]
        for key in ("variant", "bbox"):
            got = d.attrs[key]
            got = got.decode() if isinstance(got, bytes) else got
            if got != job[key]:
                raise Mismatch("samples.h5 %s: %s is %s" % (stem, key, got))
        if int(d.attrs["epoch"]) != job["epoch"] or int(d.attrs["protocol"]) != job["protocol"] or bool(d.attrs["flip"]) != job["flip"]:
            raise Mismatch("samples.h5 %s: attributes disagree with the job" % stem)
    if rows["image_id"].tolist() != list(ids):
        raise Mismatch("samples.h5 %s: image ids differ from the predictions" % stem)
    headline = "pa_mpjpe" if job["protocol"] == 1 else "mpjpe"
    # float32 storage: about 1e-5 mm at these magnitudes.
    worst = np.abs(rows[headline].astype(np.float64) - joint_errors).max()
    if worst > max(tol, 1e-3):
        raise Mismatch("samples.h5 %s: %s per-joint errors differ by %.6f mm" % (stem, headline, worst))
    if job["protocol"] == 2:
        worst = np.abs(rows["n_mpjpe"].astype(np.float64) - n_errors).max()
        if worst > max(tol, 1e-3):
            raise Mismatch("samples.h5 %s: n_mpjpe per-joint errors differ by %.6f mm" % (stem, worst))


def check_provenance(output):
    path = os.path.join(output, "run_summary.json")
    if not os.path.exists(path):
        return
    summary = load_json(path)
    prov = summary.get("provenance")
    keys = ["cnp_version", "git_commit", "libtorch_version", "device", "precision", "hosts", "ranks",
            "started", "finished"]
    if not isinstance(prov, dict) or any(k not in prov for k in keys):
        raise Mismatch("run_summary.json: provenance lacks %s" % [k for k in keys if not isinstance(prov, dict) or k not in prov])
    if len(prov["hosts"]) != prov["ranks"] or prov["ranks"] != summary.get("ranks"):
        raise Mismatch("run_summary.json: %d hosts for %s ranks" % (len(prov["hosts"]), prov["ranks"]))
    if not (prov["started"] <= prov["finished"]):
        raise Mismatch("run_summary.json: started %s after finished %s" % (prov["started"], prov["finished"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="Human3.6M root (annotations/)")
    parser.add_argument("--output", required=True, help="sweep output directory (jobs/, predictions/)")
    parser.add_argument("--bbox-root-p1", help="RootNet file used for protocol 1 (detected boxes)")
    parser.add_argument("--bbox-root-p2", help="RootNet file used for protocol 2 (detected boxes)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="mm (default 1e-3)")
    args = parser.parse_args()

    job_files = sorted(glob.glob(os.path.join(args.output, "jobs", "*.json")))
    if not job_files:
        print("check_sweep_results: %s: no jobs/*.json" % args.output, file=sys.stderr)
        return 1
    dataset = Dataset(args.dataset)
    bbox_roots = {1: args.bbox_root_p1, 2: args.bbox_root_p2}
    failures = 0
    for job_file in job_files:
        try:
            check_job(job_file, args.output, dataset, bbox_roots, args.tolerance)
        except Mismatch as e:
            print("check_sweep_results: %s: %s" % (job_file, e), file=sys.stderr)
            failures += 1
        except (KeyError, TypeError, ValueError, IndexError) as e:
            print("check_sweep_results: %s: malformed result (%s: %s)" % (job_file, type(e).__name__, e),
                  file=sys.stderr)
            failures += 1
    try:
        check_provenance(args.output)
    except Mismatch as e:
        print("check_sweep_results: %s" % e, file=sys.stderr)
        failures += 1
    if failures:
        print("check_sweep_results: %d of %d jobs failed" % (failures, len(job_files)), file=sys.stderr)
        return 1
    print("OK %d jobs" % len(job_files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
