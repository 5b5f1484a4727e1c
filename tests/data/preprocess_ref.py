"""Reference preprocessing written from REFERENCE.md section 4, the way the 3DMPPE
Python code does it (numpy float32 points, cv2, torchvision transforms).

usage: preprocess_ref.py CASES.json OUT_DIR
CASES.json: {"image": path, "boxes": [[x,y,w,h], ...], "gt_cases": [[x,y,w,h,W,H], ...]}
Writes OUT_DIR/crop_<i>.bin (uint8 256x256x3 BGR), OUT_DIR/input_<i>.bin (float32 3x256x256)
and OUT_DIR/gt_boxes.json (processed box or null per gt case).
"""
import json
import os
import sys

import cv2
import numpy as np

PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


def process_gt_bbox(bbox, width, height):
    x, y, w, h = bbox
    x1 = max(0.0, x)
    y1 = max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1))
    if not (w * h > 0 and x2 >= x1 and y2 >= y1):
        return None
    box = np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)
    w, h = box[2], box[3]
    cx, cy = box[0] + w / 2.0, box[1] + h / 2.0
    if w > h:
        h = w
    elif w < h:
        w = h
    box[2] = w * 1.25
    box[3] = h * 1.25
    box[0] = cx - box[2] / 2.0
    box[1] = cy - box[3] / 2.0
    return box.tolist()


def crop_affine(bbox):
    """The 2x3 matrix warpAffine maps the box into the 256x256 crop with."""
    cx = float(bbox[0] + 0.5 * bbox[2])
    cy = float(bbox[1] + 0.5 * bbox[3])
    centre = np.array([cx, cy], dtype=np.float32)
    down = np.array([0, bbox[3] * 0.5], dtype=np.float32)
    right = np.array([bbox[2] * 0.5, 0], dtype=np.float32)
    src = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = centre
    src[1, :] = centre + down
    src[2, :] = centre + right
    dst = np.array([[128, 128], [128, 256], [256, 128]], dtype=np.float32)
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def crop(img, bbox):
    return cv2.warpAffine(img, crop_affine(bbox), (256, 256), flags=cv2.INTER_LINEAR)


def main():
    cases = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    import torchvision.transforms as T  # slow to import; reader_ref.py does not need it

    img = cv2.imread(cases["image"], cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    transform = T.Compose([T.ToTensor(), T.Normalize(mean=PIXEL_MEAN, std=PIXEL_STD)])
    for i, box in enumerate(cases["boxes"]):
        patch = crop(img, box)
        patch.tofile(os.path.join(out, "crop_%d.bin" % i))
        rgb = patch[:, :, ::-1].copy().astype(np.float32)
        tensor = transform(rgb).numpy().astype(np.float32)
        tensor.tofile(os.path.join(out, "input_%d.bin" % i))
    gt = [process_gt_bbox(c[:4], c[4], c[5]) for c in cases["gt_cases"]]
    json.dump(gt, open(os.path.join(out, "gt_boxes.json"), "w"))


if __name__ == "__main__":
    main()
