#!/usr/bin/env python3
"""Where this machine's cv2 and cnp's preprocessing part ways, step by step.

cnp decodes with TurboJPEG and warps with Debian 12's OpenCV; the reference evaluation uses
whatever cv2 its Python has (on a GPU node, PyPI's opencv-python-headless). bench_crop_dump
writes cnp's decoded frames, affine matrices and crops; this script redoes each step with cv2 and
counts what differs:

  decode      cv2.imread against cnp's frame;
  affine      cv2.getAffineTransform (the reference's float32 points) against cnp's matrix;
  warp        cv2.warpAffine of cnp's frame with cnp's matrix against cnp's crop (warpAffine
              alone);
  full crop   the reference's whole path (imread, getAffineTransform, warpAffine) against cnp's.

Prints the cv2 build lines that decide these (version, LAPACK, JPEG, CPU dispatch), then one
"name|value" line per check for scripts/gpu_check.sh's table. Exit 0 whatever differs: this
measures, the sweep's MPJPE rows judge.

usage: crop_fidelity.py DUMP_DIR
"""
import json
import os
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "data"))
from preprocess_ref import crop, crop_affine  # noqa: E402

class Tally:
    def __init__(self, name):
        self.name, self.same, self.total, self.max_diff, self.cells = name, 0, 0, 0.0, 0

    def add(self, ours, theirs):
        diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
        self.total += 1
        self.same += int(not diff.any())
        self.max_diff = max(self.max_diff, float(diff.max()))
        self.cells += int(np.count_nonzero(diff))

    def line(self, unit):
        return (f"crop fidelity {self.name}: identical samples, max diff, {unit} differing|"
                f"{self.same}/{self.total}, {self.max_diff:.3g}, {self.cells}")


def main():
    dump = sys.argv[1]
    samples = json.load(open(os.path.join(dump, "samples.json")))
    print("cv2", cv2.__version__)
    for line in cv2.getBuildInformation().splitlines():
        if any(k in line for k in ("LAPACK", "JPEG", "Baseline", "Dispatched", "IPP", "Lapack")):
            print("  " + line.strip())
    decode, affine, warp, full = Tally("decode"), Tally("affine"), Tally("warp"), Tally("full crop")
    for i, s in enumerate(samples):
        shape = (s["height"], s["width"], 3)
        ours_frame = np.fromfile(os.path.join(dump, f"{i}_decoded.bin"), np.uint8).reshape(shape)
        ours_crop = np.fromfile(os.path.join(dump, f"{i}_crop.bin"), np.uint8).reshape(256, 256, 3)
        ours_affine = np.array(s["affine"], dtype=np.float64).reshape(2, 3)
        frame = cv2.imread(s["file"], cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        decode.add(ours_frame, frame)
        affine.add(ours_affine, crop_affine(s["bbox"]))
        warp.add(ours_crop, cv2.warpAffine(ours_frame, ours_affine, (256, 256),
                                           flags=cv2.INTER_LINEAR))
        full.add(ours_crop, crop(frame, s["bbox"]))
    print(decode.line("pixel channels"))
    print(affine.line("coefficients"))
    print(warp.line("pixel channels"))
    print(full.line("pixel channels"))


if __name__ == "__main__":
    main()
