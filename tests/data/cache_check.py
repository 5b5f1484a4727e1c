"""Reads a cnp HDF5 cache with h5py and compares it with the reader's samples.

usage: cache_check.py CACHE.h5 SAMPLES.json CROP_INDEX CROP.bin
SAMPLES.json: list of {image_id, image_file, bbox, joints_cam}; CROP.bin: the
expected uint8 crop of sample CROP_INDEX. Prints OK or raises.
"""
import json
import sys

import h5py
import numpy as np


def main():
    path, samples_path, index, crop_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    samples = json.load(open(samples_path))
    with h5py.File(path, "r") as f:
        n = len(samples)
        assert f["crops"].shape == (n, 256, 256, 3), f["crops"].shape
        assert f["crops"].dtype == np.uint8
        assert f["crops"].chunks == (1, 256, 256, 3), f["crops"].chunks
        fp = f.attrs["fingerprint"]
        fp = fp.decode() if isinstance(fp, bytes) else fp
        assert len(fp) == 64, fp
        assert int(f.attrs["num_samples"]) == n
        assert list(f["image_id"][:]) == [s["image_id"] for s in samples]
        files = [x.decode() if isinstance(x, bytes) else x for x in f["image_file"][:]]
        assert files == [s["image_file"] for s in samples]
        assert np.allclose(f["bbox"][:], np.array([s["bbox"] for s in samples]))
        assert f["joints_cam"].shape == (n, 18, 3)
        assert np.allclose(f["joints_cam"][:], np.array([s["joints_cam"] for s in samples]))
        for name in ("subject", "action_idx", "subaction", "camera", "frame"):
            assert f[name].shape == (n,), name
        assert f["image_size"].shape == (n, 2)
        for name in ("root_cam",):
            assert f[name].shape == (n, 3)
        for name in ("f", "c"):
            assert f[name].shape == (n, 2)
        expected = np.fromfile(crop_path, dtype=np.uint8).reshape(256, 256, 3)
        assert np.array_equal(f["crops"][index], expected)
    print("OK")


if __name__ == "__main__":
    main()
