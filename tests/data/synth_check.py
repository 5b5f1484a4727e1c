"""Checks a `cnp synth` output with plain Python (json, cv2, torch): the 3DMPPE layout.

usage: synth_check.py ROOT IMAGE_SIZE FRAMES(comma) [CHECKPOINT EPOCH]
Prints OK or raises.
"""
import json
import os
import re
import sys
import zipfile

import cv2

ACTIONS = ["Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing", "Purchases",
           "Sitting", "SittingDown", "Smoking", "Photo", "Waiting", "Walking", "WalkDog",
           "WalkTogether"]


def main():
    root, size = sys.argv[1], int(sys.argv[2])
    frames = sorted(int(f) for f in sys.argv[3].split(","))
    ids = set()
    kept = {9: 0, 11: 0}
    for s in (9, 11):
        ann = os.path.join(root, "annotations")
        data = json.load(open(os.path.join(ann, "Human36M_subject%d_data.json" % s)))
        cams = json.load(open(os.path.join(ann, "Human36M_subject%d_camera.json" % s)))
        joints = json.load(open(os.path.join(ann, "Human36M_subject%d_joint_3d.json" % s)))
        assert sorted(cams.keys()) == ["1", "2", "3", "4"], cams.keys()
        for cam in cams.values():
            assert len(cam["R"]) == 3 and all(len(r) == 3 for r in cam["R"])
            assert len(cam["t"]) == 3 and len(cam["f"]) == 2 and len(cam["c"]) == 2
            assert abs(cam["f"][0] - 1145 * size / 1000) < 0.02 * size
            assert abs(cam["c"][0] - size / 2) < 0.01 * size
        assert sorted(int(a) for a in joints) == list(range(2, 17))
        for a in joints.values():
            assert sorted(a.keys()) == ["1", "2"]
            for sub in a.values():
                assert sorted(int(f) for f in sub) == frames
                for j in sub.values():
                    assert len(j) == 17 and all(len(p) == 3 for p in j)
        images = data["images"]
        assert len(images) == 15 * 2 * 4 * len(frames)
        assert len(data["annotations"]) == len(images)
        by_id = {}
        for img in images:
            assert img["id"] not in ids, "duplicate image id"
            ids.add(img["id"])
            by_id[img["id"]] = img
            assert img["subject"] == s and img["width"] == size and img["height"] == size
            assert ACTIONS[img["action_idx"] - 2] == img["action_name"]
            folder = "s_%02d_act_%02d_subact_%02d_ca_%02d" % (
                s, img["action_idx"], img["subaction_idx"], img["cam_idx"])
            assert img["file_name"] == "%s/%s_%06d.jpg" % (folder, folder, img["frame_idx"] + 1)
            if img["frame_idx"] % 64 == 0:
                kept[s] += 1
        for a in data["annotations"]:
            img = by_id[a["image_id"]]
            x, y, w, h = a["bbox"]
            assert w > 10 and h > 10 and len(a["keypoints_vis"]) == 17
            assert -0.2 * size < x and x + w < 1.2 * size
        for img in images[:: max(1, len(images) // 10)]:
            pic = cv2.imread(os.path.join(root, "images", img["file_name"]))
            assert pic is not None and pic.shape == (size, size, 3), img["file_name"]
            assert pic.std() > 10  # textured, not flat
    p1 = json.load(open(os.path.join(root, "bbox_root", "protocol1.json")))
    p2 = json.load(open(os.path.join(root, "bbox_root", "protocol2.json")))
    assert len(p1) == kept[11] and len(p2) == kept[9] + kept[11], (len(p1), len(p2), kept)
    for e in p2:
        assert e["image_id"] in ids and len(e["bbox"]) == 4 and len(e["root_cam"]) == 3
        assert 3000 < e["root_cam"][2] < 8000
    if len(sys.argv) > 4:
        import torch
        path, epoch = sys.argv[4], int(sys.argv[5])
        names = zipfile.ZipFile(path).namelist()
        assert all(n.startswith("snapshot_%d.pth/" % epoch) for n in names), names[:3]
        ckpt = torch.load(path, map_location="cpu")
        assert ckpt["epoch"] == epoch
        keys = list(ckpt["network"].keys())
        assert keys and all(k.startswith("module.") for k in keys), keys[:3]
        assert "module.head.final_layer.weight" in keys, keys[-5:]
        assert ckpt["network"]["module.head.final_layer.weight"].shape[0] == 18 * 32
    print("OK")


if __name__ == "__main__":
    main()
