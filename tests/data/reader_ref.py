"""Independent Human3.6M test-set reader (REFERENCE.md sections 4-5), in the 3DMPPE way.

usage: reader_ref.py ROOT SUBJECTS(comma) SAMPLE_EVERY OUT.json [BBOX_ROOT_FILE]
Writes the samples in reference order: subjects ascending, then annotation order.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from preprocess_ref import process_gt_bbox  # noqa: E402


def main():
    root, subjects, every, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    detected = None
    if len(sys.argv) > 5:
        detected = {e["image_id"]: e for e in json.load(open(sys.argv[5]))}
    samples = []
    for s in sorted(int(x) for x in subjects.split(",")):
        ann_dir = os.path.join(root, "annotations")
        data = json.load(open(os.path.join(ann_dir, "Human36M_subject%d_data.json" % s)))
        cams = json.load(open(os.path.join(ann_dir, "Human36M_subject%d_camera.json" % s)))
        joints = json.load(open(os.path.join(ann_dir, "Human36M_subject%d_joint_3d.json" % s)))
        images = {img["id"]: img for img in data["images"]}
        for ann in data["annotations"]:
            img = images[ann["image_id"]]
            if img["frame_idx"] % every != 0:
                continue
            cam = cams[str(img["cam_idx"])]
            R = np.array(cam["R"], dtype=np.float64).reshape(3, 3)
            t = np.array(cam["t"], dtype=np.float64).reshape(3)
            world = np.array(joints[str(img["action_idx"])][str(img["subaction_idx"])][str(img["frame_idx"])],
                             dtype=np.float64)
            thorax = (world[11] + world[14]) * 0.5
            world = np.concatenate([world, thorax[None]], axis=0)
            joint_cam = np.dot(R, world.T).T + t[None]
            if detected is None:
                bbox = process_gt_bbox(ann["bbox"], img["width"], img["height"])
                if bbox is None:
                    continue
                root_cam = joint_cam[0].tolist()
            else:
                bbox = detected[img["id"]]["bbox"]
                root_cam = detected[img["id"]]["root_cam"]
            samples.append({
                "image_id": img["id"], "image_file": img["file_name"], "subject": img["subject"],
                "action_idx": img["action_idx"], "subaction": img["subaction_idx"],
                "camera": img["cam_idx"], "frame": img["frame_idx"],
                "width": img["width"], "height": img["height"], "bbox": bbox, "root_cam": root_cam,
                "f": cam["f"], "c": cam["c"], "joints_cam": joint_cam.tolist(),
            })
    json.dump(samples, open(out, "w"))


if __name__ == "__main__":
    main()
