#!/usr/bin/python3
"""Independent Python reference for the C++ ConvNeXtPose network (REFERENCE.md §1-3).

Builds the four released variants from the written description (not from any other
code of this project), gives them non-default BatchNorm statistics and peaky heatmaps,
saves them the way the training script does ({'epoch', 'network', 'optimizer'},
'module.' prefix, zip format; XS also in the legacy format), and writes soft-argmax
outputs for a fixed input batch, plain and flipped, as raw float32 files, plus
manifest.json describing what was written.

usage: make_fixtures.py OUT_DIR
"""
import collections
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

JOINTS = 18
FLIP_PAIRS = [(1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13)]
VARIANTS = {
    # name: depths, dims, head_channels, head_upsample, depth_dim, head key scheme, epoch
    "XS": ([2, 2, 6, 2], [40, 80, 160, 320], 128, [True, True, False], 32, "named", 24),
    "S": ([3, 3, 9, 3], [48, 96, 192, 384], 256, [True, True, False], 32, "named", 25),
    "M": ([3, 3, 9, 3], [48, 96, 192, 384], 256, [True, True, True], 64, "sequential", 70),
    "L": ([3, 3, 9, 3], [48, 96, 192, 384], 512, [True, True, True], 64, "sequential", 83),
}


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, kernel_size=1)
        self.pwconv2 = nn.Conv2d(4 * dim, dim, kernel_size=1)

    def forward(self, x):
        return x + self.pwconv2(F.relu(self.pwconv1(self.norm(self.dwconv(x)))))


class Backbone(nn.Module):
    def __init__(self, depths, dims):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(
            nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4), nn.BatchNorm2d(dims[0])))
        for i in range(1, 4):
            self.downsample_layers.append(
                nn.Sequential(nn.BatchNorm2d(dims[i - 1]),
                              nn.Conv2d(dims[i - 1], dims[i], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList(
            [nn.Sequential(*[Block(dims[i]) for _ in range(depths[i])]) for i in range(4)])
        self.norm = nn.BatchNorm2d(dims[3])

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x)


class NamedDeconv(nn.Module):
    def __init__(self, cin, cout, up):
        super().__init__()
        self.dwconv = nn.Conv2d(cin, cin, kernel_size=3, padding=1, groups=cin)
        self.norm = nn.BatchNorm2d(cin)
        self.pwconv = nn.Conv2d(cin, cout, kernel_size=1)
        self.up = nn.UpsamplingBilinear2d(scale_factor=2) if up else nn.Identity()

    def forward(self, x):
        return self.up(F.relu(self.pwconv(self.norm(self.dwconv(x)))))


def sequential_deconv(cin, cout, up):
    # Indices 0, 1, 2 hold the parameters; ReLU and upsampling have none.
    return nn.Sequential(
        nn.Conv2d(cin, cin, kernel_size=3, padding=1, groups=cin), nn.BatchNorm2d(cin),
        nn.Conv2d(cin, cout, kernel_size=1), nn.ReLU(),
        nn.UpsamplingBilinear2d(scale_factor=2) if up else nn.Identity())


class Head(nn.Module):
    def __init__(self, cin, channels, ups, depth_dim, scheme):
        super().__init__()
        make = NamedDeconv if scheme == "named" else sequential_deconv
        self.deconv_layers_1 = make(cin, channels, ups[0])
        self.deconv_layers_2 = make(channels, channels, ups[1])
        self.deconv_layers_3 = make(channels, channels, ups[2])
        self.final_layer = nn.Conv2d(channels, JOINTS * depth_dim, kernel_size=1)

    def forward(self, x):
        x = self.deconv_layers_3(self.deconv_layers_2(self.deconv_layers_1(x)))
        return self.final_layer(x)


class PoseNet(nn.Module):
    def __init__(self, depths, dims, channels, ups, depth_dim, scheme):
        super().__init__()
        self.backbone = Backbone(depths, dims)
        self.head = Head(dims[3], channels, ups, depth_dim, scheme)
        self.depth_dim = depth_dim

    def forward(self, x):
        return self.head(self.backbone(x))


def soft_argmax(heatmaps, depth_dim, dtype=torch.float64):
    """Softmax over each joint's D*H*W voxels, then the expected voxel index per axis.

    In float64 by default: a float32 softmax over 64^3 voxels normalises with a relative
    error of ~3e-5, which moves coordinates near 60 by up to ~3e-3 heatmap units; the
    reference should be exact to well below the 1e-3 parity tolerance.
    """
    n, _, h, w = heatmaps.shape
    p = F.softmax(heatmaps.to(dtype).reshape(n, JOINTS, depth_dim * h * w), 2)
    p = p.reshape(n, JOINTS, depth_dim, h, w)
    x = (p.sum(dim=(2, 3)) * torch.arange(w, dtype=dtype)).sum(dim=2)
    y = (p.sum(dim=(2, 4)) * torch.arange(h, dtype=dtype)).sum(dim=2)
    z = (p.sum(dim=(3, 4)) * torch.arange(depth_dim, dtype=dtype)).sum(dim=2)
    return torch.stack((x, y, z), dim=2).float()


def image_like_batch(rng, n):
    """8x8-pixel blocks of 0..255 values, normalised without /255 (REFERENCE.md §4)."""
    raw = rng.uniform(0, 255, size=(n, 3, 32, 32)).astype(np.float32)
    raw = raw.repeat(8, axis=2).repeat(8, axis=3)
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    return torch.from_numpy((raw - mean) / std)


def make_network(name, seed):
    depths, dims, channels, ups, depth_dim, scheme, _ = VARIANTS[name]
    torch.manual_seed(seed)
    net = PoseNet(depths, dims, channels, ups, depth_dim, scheme)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.momentum = 1.0
        # Calibrate running statistics on image-like data so activations stay in range,
        # then move them away from what the batch gave.
        net.train()
        net(image_like_batch(np.random.RandomState(seed), 2))
        net.eval()
        for bn in bns:
            bn.momentum = 0.1
            bn.running_mean.add_(torch.empty_like(bn.running_mean).uniform_(-0.1, 0.1) *
                                 bn.running_var.sqrt())
            bn.running_var.mul_(torch.empty_like(bn.running_var).uniform_(0.8, 1.25))
            bn.num_batches_tracked.fill_(12345)
        # Peaky heatmaps: logits with a standard deviation of 3.
        spread = net(image_like_batch(np.random.RandomState(seed + 1), 2)).std().item()
        net.head.final_layer.weight.mul_(3.0 / spread)
        net.head.final_layer.bias.mul_(3.0 / spread)
    return net


def predict(net, images):
    with torch.no_grad():
        heatmaps = net(images)
        plain = soft_argmax(heatmaps, net.depth_dim)
        flipped = soft_argmax(net(torch.flip(images, dims=[3])), net.depth_dim)
    width = heatmaps.shape[3]
    flipped[:, :, 0] = width - 1 - flipped[:, :, 0]
    swapped = flipped.clone()
    for a, b in FLIP_PAIRS:
        swapped[:, a], swapped[:, b] = flipped[:, b], flipped[:, a]
    return plain, swapped, width


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    images = image_like_batch(np.random.RandomState(7), 2)
    images.numpy().tofile(os.path.join(out, "inputs.bin"))
    manifest = {"batch": images.shape[0], "joints": JOINTS, "flip_pairs": FLIP_PAIRS,
                "variants": {}}
    for index, name in enumerate(VARIANTS):
        depths, dims, channels, ups, depth_dim, scheme, epoch = VARIANTS[name]
        net = make_network(name, 100 + index)
        state = collections.OrderedDict(
            ("module." + k, v) for k, v in net.state_dict().items())
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        checkpoint = {"epoch": epoch, "network": state, "optimizer": optimizer.state_dict()}
        folder = os.path.join(out, "checkpoints", name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "snapshot_%d.pth.tar" % epoch)
        torch.save(checkpoint, path)
        legacy = None
        if name == "XS":
            legacy = os.path.join(folder, "snapshot_%d_legacy.pth.tar" % epoch)
            torch.save(checkpoint, legacy, _use_new_zipfile_serialization=False)
        plain, flipped, width = predict(net, images)
        plain.numpy().astype(np.float32).tofile(os.path.join(out, name + "_plain.bin"))
        flipped.numpy().astype(np.float32).tofile(os.path.join(out, name + "_flip.bin"))
        manifest["variants"][name] = {
            "depths": depths, "dims": dims, "head_channels": channels, "head_upsample": ups,
            "depth_dim": depth_dim, "heatmap": width, "epoch": epoch, "checkpoint": path,
            "legacy_checkpoint": legacy, "head_scheme": scheme, "tensors": len(state),
            "parameters": sum(p.numel() for p in net.parameters()),
            # Spread of the outputs: parity tolerances mean something only if the
            # heatmaps are peaky and the coordinates move between inputs.
            "coordinate_std": float(plain.std().item()),
        }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
