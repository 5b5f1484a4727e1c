#!/usr/bin/env python3
"""The reference evaluation's shape in PyTorch, to time cnp_sweep against on the same machine.

What the reference Python evaluation does for one checkpoint (REFERENCE.md / docs/reference.md):
a torch Dataset that reads each image with cv2.imread, crops it with cv2.warpAffine, converts
BGR -> RGB and normalises without /255 through torchvision's ToTensor + Normalize; a DataLoader
with worker processes; the fp32 network (the independent implementation in
tests/model/make_fixtures.py) on the chosen device; soft-argmax, flip test, back-projection and
MPJPE (protocol 2) or PA-MPJPE (protocol 1). Prints one JSON object: wall seconds (data loading
included), samples/s and the headline error, which must equal cnp's to 0.01 mm.

usage: reference_eval.py --root DATA --checkpoint CKPT --variant XS [--protocol 2] [--flip]
                         [--device cuda] [--batch 64] [--workers 8] [--sample-every 64]
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as transforms

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "model"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "data"))
from make_fixtures import FLIP_PAIRS, JOINTS, VARIANTS, PoseNet  # noqa: E402
from preprocess_ref import crop, process_gt_bbox  # noqa: E402

SUBJECTS = {1: [11], 2: [9, 11]}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_samples(root, protocol, every):
    samples = []
    for s in SUBJECTS[protocol]:
        ann = os.path.join(root, "annotations")
        data = json.load(open(os.path.join(ann, "Human36M_subject%d_data.json" % s)))
        cams = json.load(open(os.path.join(ann, "Human36M_subject%d_camera.json" % s)))
        joints = json.load(open(os.path.join(ann, "Human36M_subject%d_joint_3d.json" % s)))
        images = {img["id"]: img for img in data["images"]}
        for a in data["annotations"]:
            img = images[a["image_id"]]
            if img["frame_idx"] % every:
                continue
            cam = cams[str(img["cam_idx"])]
            world = np.array(joints[str(img["action_idx"])][str(img["subaction_idx"])]
                             [str(img["frame_idx"])], dtype=np.float64)
            world = np.concatenate([world, (world[11:12] + world[14:15]) * 0.5], axis=0)
            cam_joints = world @ np.array(cam["R"], dtype=np.float64).reshape(3, 3).T + \
                np.array(cam["t"], dtype=np.float64).reshape(1, 3)
            bbox = process_gt_bbox(a["bbox"], img["width"], img["height"])
            if bbox is None:
                continue
            samples.append({"file": os.path.join(root, "images", img["file_name"]), "bbox": bbox,
                            "f": cam["f"], "c": cam["c"], "joints": cam_joints})
    return samples


class TestSet(torch.utils.data.Dataset):
    def __init__(self, samples):
        self.samples = samples
        self.transform = transforms.Compose([transforms.ToTensor(),
                                             transforms.Normalize(mean=MEAN, std=STD)])

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        image = cv2.imread(self.samples[i]["file"], cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        patch = crop(image, self.samples[i]["bbox"])[:, :, ::-1].astype(np.float32).copy()
        return self.transform(patch)


def soft_argmax(heatmaps, depth_dim):
    n, _, h, w = heatmaps.shape
    p = F.softmax(heatmaps.reshape(n, JOINTS, depth_dim * h * w), 2).reshape(n, JOINTS, depth_dim, h, w)
    dev = heatmaps.device
    x = (p.sum(dim=(2, 3)) * torch.arange(w, dtype=torch.float32, device=dev)).sum(dim=2)
    y = (p.sum(dim=(2, 4)) * torch.arange(h, dtype=torch.float32, device=dev)).sum(dim=2)
    z = (p.sum(dim=(3, 4)) * torch.arange(depth_dim, dtype=torch.float32, device=dev)).sum(dim=2)
    return torch.stack((x, y, z), dim=2)


def rigid_align(pred, gt):
    mp, mg = pred.mean(0), gt.mean(0)
    u, _, vt = np.linalg.svd((gt - mg).T @ (pred - mp))
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    return (pred - mp) @ rot.T + mg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--protocol", type=int, default=2, choices=[1, 2])
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--sample-every", type=int, default=64)
    args = ap.parse_args()
    # fp32 throughout, as on the GPUs the reference was run on: PyTorch otherwise lets cuDNN
    # round convolution inputs to TF32 on Ampere and newer GPUs (0.2 mm on MPJPE here).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

    start = time.time()
    depths, dims, channels, ups, depth_dim, _, _ = VARIANTS[args.variant]
    state = torch.load(args.checkpoint, map_location="cpu")
    state = state.get("network", state)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    # The head's key scheme is the checkpoint's (named submodules or a plain Sequential).
    scheme = "named" if any(".dwconv." in k for k in state if k.startswith("head.")) else "sequential"
    net = PoseNet(depths, dims, channels, ups, depth_dim, scheme)
    net.load_state_dict(state)
    net = net.to(args.device).eval()
    samples = load_samples(args.root, args.protocol, args.sample_every)
    loader = torch.utils.data.DataLoader(TestSet(samples), batch_size=args.batch, shuffle=False,
                                         num_workers=args.workers,
                                         pin_memory=args.device.startswith("cuda"))
    coords = []
    with torch.no_grad():
        for images in loader:
            images = images.to(args.device, non_blocking=True)
            heatmaps = net(images)
            out = soft_argmax(heatmaps, depth_dim)
            if args.flip:
                flipped = soft_argmax(net(torch.flip(images, dims=[3])), depth_dim)
                flipped[:, :, 0] = heatmaps.shape[3] - 1 - flipped[:, :, 0]
                for a, b in FLIP_PAIRS:
                    flipped[:, [a, b]] = flipped[:, [b, a]]
                out = (out + flipped) / 2
            coords.append(out.cpu().numpy())
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    coords = np.concatenate(coords).astype(np.float64)
    side = heatmaps.shape[3]

    errors = []
    for s, c in zip(samples, coords):
        bx, by, bw, bh = s["bbox"]
        u = c[:, 0] / side * bw + bx
        v = c[:, 1] / side * bh + by
        z = (c[:, 2] / depth_dim * 2 - 1) * 1000.0 + s["joints"][0, 2]
        pred = np.stack([(u - s["c"][0]) / s["f"][0] * z, (v - s["c"][1]) / s["f"][1] * z, z], axis=1)
        pred, gt = pred - pred[0], s["joints"] - s["joints"][0]
        if args.protocol == 1:
            pred = rigid_align(pred, gt)
        errors.append(np.sqrt(((pred[:17] - gt[:17]) ** 2).sum(1)).mean())
    seconds = time.time() - start
    print(json.dumps({"variant": args.variant, "protocol": args.protocol, "flip": args.flip,
                      "device": args.device, "samples": len(samples), "seconds": seconds,
                      "samples_per_second": len(samples) / seconds,
                      ("pa_mpjpe" if args.protocol == 1 else "mpjpe"): float(np.mean(errors))}))


if __name__ == "__main__":
    main()
