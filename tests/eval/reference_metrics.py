#!/usr/bin/python3
"""Reference MPJPE / PA-MPJPE, written from REFERENCE.md section 6 with numpy only.

Writes a JSON fixture: random samples (box, root, camera, ground truth, heatmap-unit
soft-argmax output) and what the reference evaluation computes for them, so the C++
metrics can be compared to 1e-6 mm. Usage: reference_metrics.py OUT.json [--seed N]
"""
import argparse
import json

import numpy as np

JOINTS = ["Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck",
          "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist",
          "Thorax"]
ACTIONS = ["Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases",
           "Sitting", "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog",
           "WalkTogether"]
ROOT = 0
THORAX = 17
EVAL_JOINTS = [j for j in range(18) if j != THORAX]


def heatmap_to_camera(coords, heatmap_size, depth_dim, bbox, root_z, f, c):
    coords = coords.astype(np.float64)
    u = coords[:, 0] / heatmap_size * bbox[2] + bbox[0]
    v = coords[:, 1] / heatmap_size * bbox[3] + bbox[1]
    z = (coords[:, 2] / depth_dim * 2.0 - 1.0) * (2000.0 / 2.0) + root_z
    x = (u - c[0]) / f[0] * z
    y = (v - c[1]) / f[1] * z
    return np.stack([x, y, z], axis=1)


def rigid_align(pred, gt):
    """Kabsch, rotation + translation, no scale; returns (aligned, reflection_fixed)."""
    mp = pred.mean(axis=0)
    mg = gt.mean(axis=0)
    h = (pred - mp).T @ (gt - mg)
    u, _, vt = np.linalg.svd(h)
    r = vt.T @ u.T
    reflection = np.linalg.det(r) < 0
    if reflection:
        vt[2] = -vt[2]
        r = vt.T @ u.T
    t = mg - r @ mp
    return (r @ pred.T).T + t, bool(reflection)


def joint_errors(pred, gt):
    return np.sqrt(((pred[EVAL_JOINTS] - gt[EVAL_JOINTS]) ** 2).sum(axis=1))


def random_rotation(rng, max_angle):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    samples = []
    sums = {"mpjpe": [], "pa_mpjpe": []}
    per_action = {}
    per_joint = {"mpjpe": [], "pa_mpjpe": []}
    for i in range(args.samples):
        heatmap_size, depth_dim = [(32, 32), (64, 64), (64, 32)][i % 3]
        coords = np.stack([rng.uniform(0, heatmap_size - 1, 18), rng.uniform(0, heatmap_size - 1, 18),
                           rng.uniform(0, depth_dim - 1, 18)], axis=1).astype(np.float32)
        side = rng.uniform(200, 900)
        bbox = [rng.uniform(-50, 500), rng.uniform(-50, 500), side, side * rng.uniform(0.8, 1.2)]
        root = [rng.uniform(-500, 500), rng.uniform(-500, 500), rng.uniform(3000, 7000)]
        f = [rng.uniform(1100, 1200), rng.uniform(1100, 1200)]
        c = [rng.uniform(480, 520), rng.uniform(480, 520)]
        cam = heatmap_to_camera(coords, heatmap_size, depth_dim, bbox, root[2], f, c)
        # Ground truth near the prediction: rotated, shifted, noisy; every 5th sample
        # mirrored so the Kabsch step needs its reflection fix.
        gt = (random_rotation(rng, 0.4) @ (cam - cam.mean(axis=0)).T).T + cam.mean(axis=0)
        gt += rng.normal(scale=40.0, size=gt.shape) + rng.normal(scale=100.0, size=3)
        if i % 5 == 4:
            gt[:, 0] = 2 * gt[:, 0].mean() - gt[:, 0]
        action_idx = int(rng.integers(2, 17)) if i > 14 else i + 2

        pred_rel = cam - cam[ROOT]
        gt_rel = gt - gt[ROOT]
        aligned, reflection = rigid_align(pred_rel, gt_rel)
        errors = [joint_errors(pred_rel, gt_rel), joint_errors(aligned, gt_rel)]
        for name, e in zip(("mpjpe", "pa_mpjpe"), errors):
            sums[name].append(e.mean())
            per_joint[name].append(e)
            per_action.setdefault(ACTIONS[action_idx - 2], {"mpjpe": [], "pa_mpjpe": []})[name].append(e.mean())
        samples.append({
            "image_id": 1000 + i,
            "action_idx": action_idx,
            "heatmap_size": heatmap_size,
            "depth_dim": depth_dim,
            "coords": coords.astype(np.float64).tolist(),
            "bbox": bbox,
            "root_cam": root,
            "f": f,
            "c": c,
            "joints_cam": gt.tolist(),
            "expected": {
                "cam": cam.tolist(),
                "pred_relative": pred_rel.tolist(),
                "pred_aligned": aligned.tolist(),
                "errors": [e.tolist() for e in errors],
                "reflection": reflection,
            },
        })

    # Direct rigid-alignment cases: exact mirror images (reflection) and exact rotations.
    align_cases = []
    for k in range(6):
        a = rng.normal(scale=300.0, size=(18, 3))
        b = (random_rotation(rng, 3.0) @ a.T).T + rng.normal(scale=500.0, size=3)
        if k % 2 == 0:
            b[:, 2] = -b[:, 2]
        b += rng.normal(scale=5.0, size=b.shape)
        aligned, reflection = rigid_align(a, b)
        align_cases.append({"pred": a.tolist(), "gt": b.tolist(), "aligned": aligned.tolist(),
                            "reflection": reflection})

    expected = {
        "mpjpe": float(np.mean(sums["mpjpe"])),
        "pa_mpjpe": float(np.mean(sums["pa_mpjpe"])),
        "per_action": {a: {m: float(np.mean(v)) for m, v in d.items()} for a, d in per_action.items()},
        "per_joint": {JOINTS[j]: {m: float(np.mean(np.array(per_joint[m])[:, k])) for m in per_joint}
                      for k, j in enumerate(EVAL_JOINTS)},
        "num_samples": len(samples),
    }
    with open(args.out, "w") as out:
        json.dump({"samples": samples, "align_cases": align_cases, "expected": expected}, out)


if __name__ == "__main__":
    main()
