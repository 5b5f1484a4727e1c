#!/usr/bin/python3
"""Writes the committed seed corpora of the fuzz targets (fuzz/corpus/<target>/).

Run with Debian's python3 (it needs python3-torch): /usr/bin/python3 fuzz/make_seeds.py
Every seed is small (a few hundred bytes to a few KB) and valid, so the fuzzers start
from inputs that reach deep into the readers. Rerunning rewrites the same files."""
import collections
import io
import json
import os
import pickle
import shutil
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def saved(obj, legacy=False):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def checkpoints():
    torch.manual_seed(0)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = collections.OrderedDict()
    sd["module.backbone.w"] = base
    sd["module.head.t"] = base.t()  # strided view of the same storage
    sd["module.head.s"] = base[1:, 2:]  # offset view
    sd["bn.num_batches_tracked"] = torch.tensor(3)
    half = collections.OrderedDict(h=torch.ones(2, 2, dtype=torch.float16),
                                   b=torch.zeros(3, dtype=torch.bool))
    objects = {
        "network": {"epoch": 7, "network": sd},
        "state_dict": {"state_dict": half},
        "bare": collections.OrderedDict(w=torch.ones(4)),
        "param": collections.OrderedDict(p=torch.nn.Parameter(torch.ones(2, 3))),
    }
    for name, obj in objects.items():
        for legacy in (False, True):
            data = saved(obj, legacy)
            put("checkpoint", name + ("_legacy" if legacy else "_zip") + ".pth", data)
            if legacy:
                continue
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
                put("pickle", name + ".pkl", z.read(pkl))
    put("pickle", "plain_types.pkl",
        pickle.dumps({"a": [1, 2.5, None, True, "x", b"y", (1, 2)], "big": 2 ** 70,
                      "neg": -5, "set": {1, 2}}, protocol=2))
    put("pickle", "protocol4.pkl", pickle.dumps({"k": list(range(20))}, protocol=4))


def sweeps():
    put("sweep_yaml", "full.yaml", """name: ml
output: results/ml
dataset:
  root: data/Human36M
  bbox: detected
  bbox_root: "data/bbox_root/protocol{protocol}.json"
  sample_every: 64
  cache: cache/h36m
  skip_bad_samples: true
model:
  checkpoint: "checkpoints/{variant}/snapshot_{epoch}.pth.tar"
  variants:
    M-wide: {depths: [3,3,27,3], dims: [128,256,512,1024], head_channels: 256,
             head_upsample: [true,true,true], depth_dim: 64}
sweep:
  variants: [M, L, M-wide]
  epochs: "60-70:2"
  protocols: [1, 2]
  flip: [false, true]
runtime:
  batch_size: 16
  device: auto
  precision: fp32
  threads_per_rank: auto
""")
    put("sweep_yaml", "small.yaml", """name: demo
dataset: {root: demo/data, bbox: gt}
model: {checkpoint: "demo/data/checkpoints/{variant}/snapshot_{epoch}.pth.tar"}
sweep: {variants: [XS], epochs: 1, protocols: [2]}
""")


def annotations():
    # One subject (11), one camera, two frames; sections joined as fuzz_annotations expects.
    images, anns, joints = [], [], {"2": {"1": {}}}
    for k, frame in enumerate((0, 64)):
        name = "s_11_act_02_subact_01_ca_01/s_11_act_02_subact_01_ca_01_%06d.jpg" % (frame + 1)
        images.append({"id": 100 + k, "file_name": name, "width": 1000, "height": 1000,
                       "subject": 11, "action_name": "Directions", "action_idx": 2,
                       "subaction_idx": 1, "cam_idx": 1, "frame_idx": frame})
        anns.append({"id": 200 + k, "image_id": 100 + k, "bbox": [400.5, 300, 200, 420],
                     "keypoints_vis": [True] * 17})
        joints["2"]["1"][str(frame)] = [[10.0 * j, -5.0 * j + frame, 900.0 + j] for j in range(17)]
    data = {"images": images, "annotations": anns}
    camera = {"1": {"R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "t": [0, 0, 4000],
                    "f": [1145.0, 1143.8], "c": [512.5, 515.5]}}
    boxes = [{"image_id": 100, "bbox": [390.0, 290.0, 230.0, 440.0], "root_cam": [10, 20, 4900]},
             {"image_id": 101, "bbox": [395.0, 292.0, 228.0, 438.0], "root_cam": [12, 22, 4950]}]
    sep = "\n#####\n"
    parts = [json.dumps(data), json.dumps(camera), json.dumps(joints)]
    put("annotations", "gt.txt", sep.join(parts))
    put("annotations", "detected.txt", sep.join(parts + [json.dumps(boxes)]))


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    checkpoints()
    sweeps()
    annotations()


if __name__ == "__main__":
    main()
