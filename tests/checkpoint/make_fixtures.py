#!/usr/bin/python3
"""Writes PyTorch checkpoint fixtures for the checkpoint tests, with Debian's torch.

usage: make_fixtures.py formats OUT_DIR    checkpoints in every format/dtype/layout
       make_fixtures.py security OUT_DIR   malicious pickles (+ a small valid file)
       make_fixtures.py dump CKPT OUT_DIR  torch.load CKPT and dump its state dict

Each mode writes OUT_DIR/manifest.json. For every checkpoint it lists the
expected metadata and, per tensor, name/dtype/shape and the byte range of its
contiguous little-endian values in OUT_DIR/<file>.bin (float16/bfloat16 tensors
also get their float32 conversion, to check TensorData::to_float).
"""
import collections
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import torch
import torch.nn as nn

DTYPE_NAMES = {
    torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16",
    torch.float64: "float64", torch.int64: "int64", torch.int32: "int32",
    torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8", torch.bool: "bool",
}


def tensor_bytes(t):
    t = t.detach().contiguous().flatten()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


class Expectations:
    """Collects expected tensors per checkpoint and writes the manifest."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.entries = []

    def add(self, file, fmt, archive_name, container_key, epoch, state_dict, **extra):
        blob = bytearray()
        tensors = []
        for name, t in state_dict.items():
            if not isinstance(t, torch.Tensor):
                continue
            raw = tensor_bytes(t)
            entry = {"name": name, "dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                     "offset": len(blob), "size": len(raw)}
            blob += raw
            if t.dtype in (torch.float16, torch.bfloat16):
                f = tensor_bytes(t.float())
                entry["float_offset"], entry["float_size"] = len(blob), len(f)
                blob += f
            tensors.append(entry)
        with open(os.path.join(self.out_dir, file + ".bin"), "wb") as f:
            f.write(blob)
        e = {"file": file, "format": fmt, "archive_name": archive_name,
             "container_key": container_key, "epoch": epoch, "tensors": tensors}
        e.update(extra)
        self.entries.append(e)

    def write(self, **extra):
        manifest = {"checkpoints": self.entries}
        manifest.update(extra)
        with open(os.path.join(self.out_dir, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)


# --- a ConvNeXt-BN pose network with the real key names and shapes (variant L) ---

class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.dwconv = nn.Conv2d(d, d, 7, padding=3, groups=d)
        self.norm = nn.BatchNorm2d(d)
        self.pwconv1 = nn.Conv2d(d, 4 * d, 1)
        self.pwconv2 = nn.Conv2d(4 * d, d, 1)


class Backbone(nn.Module):
    def __init__(self, depths, dims):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), nn.BatchNorm2d(dims[0]))]
        for i in range(1, 4):
            layers.append(nn.Sequential(nn.BatchNorm2d(dims[i - 1]),
                                        nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)))
        self.downsample_layers = nn.ModuleList(layers)
        self.stages = nn.ModuleList(
            [nn.Sequential(*[Block(dims[i]) for _ in range(depths[i])]) for i in range(4)])
        self.norm = nn.BatchNorm2d(dims[3])


class Head(nn.Module):
    def __init__(self, cin, channels, joints, depth_dim):
        super().__init__()
        for k in (1, 2, 3):
            c = cin if k == 1 else channels
            setattr(self, "deconv_layers_%d" % k, nn.Sequential(
                nn.Conv2d(c, c, 3, padding=1, groups=c), nn.BatchNorm2d(c),
                nn.Conv2d(c, channels, 1)))
        self.final_layer = nn.Conv2d(channels, joints * depth_dim, 1)


class PoseNet(nn.Module):
    def __init__(self, depths, dims, head_channels, depth_dim):
        super().__init__()
        self.backbone = Backbone(depths, dims)
        self.head = Head(dims[3], head_channels, 18, depth_dim)


def trained_like(depths, dims, head_channels, depth_dim, seed):
    """DataParallel-wrapped network after one AdamW step (non-trivial BN stats too)."""
    torch.manual_seed(seed)
    model = nn.DataParallel(PoseNet(depths, dims, head_channels, depth_dim))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(1234)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = sum((p * p).sum() for p in model.parameters())
    loss.backward()
    opt.step()
    return model, opt


def every_dtype():
    g = torch.Generator().manual_seed(7)
    sd = collections.OrderedDict()
    base = torch.randn(5, 7, generator=g)
    sd["f32"] = base
    f16 = base.half()
    # Special values: infinities, NaN, subnormals, negative zero, max.
    f16[0, :6] = torch.tensor([float("inf"), -float("inf"), float("nan"), 6e-8, -0.0, 65504.0])
    sd["f16"] = f16
    bf16 = base.bfloat16()
    bf16[0, :3] = torch.tensor([float("inf"), 1e-40, -0.0])
    sd["bf16"] = bf16
    sd["f64"] = base.double() * 1e200
    sd["i64"] = torch.tensor([-(2 ** 62), 2 ** 62 + 3, -1, 0], dtype=torch.int64)
    sd["i32"] = torch.tensor([-(2 ** 31), 2 ** 31 - 1, 5], dtype=torch.int32)
    sd["i16"] = torch.tensor([-32768, 32767, 1], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127, 3], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True, True])
    return sd


def views():
    """Tensors sharing storages, with offsets and non-contiguous strides."""
    base = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    sd = collections.OrderedDict()
    sd["base"] = base
    sd["slice"] = base[1]                    # storage offset 20
    sd["transposed"] = base.transpose(0, 2)  # strides (1, 5, 20)
    sd["stepped"] = base[:, 1:, ::2]         # offset 5, strides (20, 5, 2)
    sd["column"] = base[2, :, 3]             # offset 43, stride 5
    sd["expanded"] = torch.tensor([1.5, -2.5]).reshape(2, 1).expand(2, 6)  # stride 0
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 4)
    other = torch.arange(10, dtype=torch.int64)
    sd["other_a"] = other[2:5]
    sd["other_b"] = other[::3]
    return sd


def save_legacy(obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def save_with_location(obj, path, location, **kwargs):
    """Saves as if the storages lived on `location` (e.g. cuda:0), without CUDA."""
    original = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: location
    try:
        torch.save(obj, path, **kwargs)
    finally:
        torch.serialization.location_tag = original


def formats(out):
    exp = Expectations(out)

    # The released layout: a zip named .tar whose inner folder is snapshot_83.pth.
    model, opt = trained_like([3, 3, 9, 3], [48, 96, 192, 384], 512, 64, seed=1)
    sd = model.state_dict()
    assert hasattr(sd, "_metadata")
    tmp = os.path.join(out, "snapshot_83.pth.tar")
    torch.save({"epoch": 83, "network": sd, "optimizer": opt.state_dict()}, tmp)
    os.replace(tmp, os.path.join(out, "ConvNeXtPose_L.tar"))
    with zipfile.ZipFile(os.path.join(out, "ConvNeXtPose_L.tar")) as z:
        assert z.namelist()[0] == "snapshot_83.pth/data.pkl"
    exp.add("ConvNeXtPose_L.tar", "zip", "snapshot_83.pth", "network", 83, sd, large=True)

    small, small_opt = trained_like([1, 1, 2, 1], [8, 16, 24, 32], 16, 4, seed=2)
    ssd = small.state_dict()
    torch.save({"epoch": 5, "network": ssd, "optimizer": small_opt.state_dict()},
               os.path.join(out, "small.pth"))
    exp.add("small.pth", "zip", "small", "network", 5, ssd)
    save_legacy({"epoch": 6, "network": ssd, "optimizer": small_opt.state_dict()},
                os.path.join(out, "small_legacy.pth.tar"))
    exp.add("small_legacy.pth.tar", "legacy", "", "network", 6, ssd)

    torch.save({"state_dict": every_dtype(), "epoch": 12}, os.path.join(out, "dtypes.pth"))
    exp.add("dtypes.pth", "zip", "dtypes", "state_dict", 12, every_dtype())
    save_legacy({"state_dict": every_dtype()}, os.path.join(out, "dtypes_legacy.pth"))
    exp.add("dtypes_legacy.pth", "legacy", "", "state_dict", None, every_dtype())

    torch.save({"model": views()}, os.path.join(out, "views.pth"))
    exp.add("views.pth", "zip", "views", "model", None, views())
    save_legacy({"model": views()}, os.path.join(out, "views_legacy.pth"))
    exp.add("views_legacy.pth", "legacy", "", "model", None, views())

    # Bare state dicts, including nn.Parameter values (_rebuild_parameter).
    torch.save(ssd, os.path.join(out, "bare.pth"))
    exp.add("bare.pth", "zip", "bare", "", None, ssd)
    params = collections.OrderedDict((k, nn.Parameter(v.clone())) for k, v in views().items()
                                     if v.is_floating_point())
    torch.save(params, os.path.join(out, "parameters.pth"))
    exp.add("parameters.pth", "zip", "parameters", "", None, params)
    save_legacy(params, os.path.join(out, "parameters_legacy.pth"))
    exp.add("parameters_legacy.pth", "legacy", "", "", None, params)

    # Storages tagged cuda:0, as on a GPU-trained checkpoint.
    save_with_location({"epoch": 9, "network": ssd}, os.path.join(out, "cuda.pth"), "cuda:0")
    exp.add("cuda.pth", "zip", "cuda", "network", 9, ssd, location="cuda:0")
    save_with_location({"epoch": 9, "network": ssd}, os.path.join(out, "cuda_legacy.pth"),
                       "cuda:0", _use_new_zipfile_serialization=False)
    exp.add("cuda_legacy.pth", "legacy", "", "network", 9, ssd, location="cuda:0")
    with zipfile.ZipFile(os.path.join(out, "cuda.pth")) as z:
        assert b"cuda:0" in z.read("cuda/data.pkl")
    exp.write()


class Evil:
    """Would create `marker` if anything ever executed the pickle."""

    def __init__(self, marker, func):
        self.marker, self.func = marker, func

    def __reduce__(self):
        if self.func == "system":
            return (os.system, ("touch " + self.marker,))
        if self.func == "popen":
            return (subprocess.Popen, (["touch", self.marker],))
        return (eval, ("open(%r, 'w').close()" % self.marker,))


def legacy_bytes(object_pickle):
    """The legacy stream around an arbitrary object pickle (no storages)."""
    head = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
    head += pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": True,
                          "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    return head + object_pickle + pickle.dumps([], protocol=2)


def security(out):
    marker = os.path.join(out, "PWNED")
    cases = []

    def add(file, data, global_name):
        with open(os.path.join(out, file), "wb") as f:
            f.write(data)
        cases.append({"file": file, "global": global_name})

    def zipped(file, pkl):
        path = os.path.join(out, file)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", pkl)
            z.writestr("archive/version", "3\n")
        with open(path, "rb") as f:
            return f.read()

    system_pkl = pickle.dumps({"epoch": 1, "network": Evil(marker, "system")}, protocol=2)
    add("evil_zip.pth", zipped("evil_zip.pth", system_pkl), "posix.system")
    add("evil_legacy.pth", legacy_bytes(system_pkl), "posix.system")
    add("evil_raw.pkl", system_pkl, "posix.system")
    # Protocol 2 spells builtins as __builtin__ (Python 2 compatibility names).
    add("evil_eval.pth", zipped("evil_eval.pth", pickle.dumps(Evil(marker, "eval"), protocol=2)),
        "__builtin__.eval")
    add("evil_eval4.pth", zipped("evil_eval4.pth", pickle.dumps(Evil(marker, "eval"), protocol=4)),
        "builtins.eval")
    # Protocol 4 names globals with STACK_GLOBAL.
    add("evil_popen.pth",
        zipped("evil_popen.pth", pickle.dumps(Evil(marker, "popen"), protocol=4)),
        "subprocess.Popen")
    # Hiding the call inside the tensor rebuild arguments changes nothing.
    hidden = pickle.dumps(collections.OrderedDict(w=Evil(marker, "system")), protocol=2)
    add("evil_nested_legacy.pth", legacy_bytes(hidden), "posix.system")

    exp = Expectations(out)
    small, opt = trained_like([1, 1, 1, 1], [4, 8, 8, 8], 8, 2, seed=3)
    torch.save({"epoch": 2, "network": small.state_dict(), "optimizer": opt.state_dict()},
               os.path.join(out, "valid.pth"))
    exp.add("valid.pth", "zip", "valid", "network", 2, small.state_dict())
    save_legacy({"epoch": 2, "network": small.state_dict()}, os.path.join(out, "valid_legacy.pth"))
    exp.add("valid_legacy.pth", "legacy", "", "network", 2, small.state_dict())
    # Sanity: Python's own pickle would run the payload; we only check the marker is absent.
    assert not os.path.exists(marker)
    exp.write(malicious=cases, marker=marker, inflating=inflating(out))


def write_zeros(f, n):
    block = bytes(1 << 20)
    while n > 0:
        f.write(block[:min(n, len(block))])
        n -= len(block)


def inflating(out):
    """Valid torch files whose bytes disagree with what they declare (small on disk).

    Returns [{"file", "expected"}]: each must be refused before its data is inflated."""
    cases = []
    sd = {"network": collections.OrderedDict(w=torch.zeros(4))}
    src = os.path.join(out, "four_floats.pth")
    torch.save(sd, src)

    def repack(file, replace, size):
        # Same entries, except `replace`, which becomes `size` zero bytes, deflated.
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(os.path.join(out, file), "w") as zout:
            for info in zin.infolist():
                if info.filename.endswith(replace):
                    bomb = zipfile.ZipInfo(info.filename)
                    bomb.compress_type = zipfile.ZIP_DEFLATED
                    with zout.open(bomb, "w") as f:
                        write_zeros(f, size)
                else:
                    zout.writestr(info, zin.read(info.filename))

    # A 4-float storage whose zip entry inflates to 64 MiB (the 2 GiB case, scaled down).
    repack("storage_bomb.pth", "/data/0", 64 << 20)
    cases.append({"file": "storage_bomb.pth",
                  "expected": "storage '0' holds 67108864 bytes but declares 4 float32 elements"})
    # A pickle that inflates past any real checkpoint's.
    repack("pickle_bomb.pth", "/data.pkl", 65 << 20)
    cases.append({"file": "pickle_bomb.pth", "expected": "would inflate to 68157440 bytes"})
    # Legacy: the int64 element count before the data says 2^20, the pickle says 4.
    save_legacy(sd, os.path.join(out, "legacy_count.pth"))
    with open(os.path.join(out, "legacy_count.pth"), "rb") as f:
        data = f.read()
    assert data[-24:-16] == (4).to_bytes(8, "little")
    with open(os.path.join(out, "legacy_count.pth"), "wb") as f:
        f.write(data[:-24] + (1 << 20).to_bytes(8, "little") + bytes(4 << 20))
    cases.append({"file": "legacy_count.pth",
                  "expected": "holds 4194304 bytes but declares 4 float32 elements"})
    return cases


def dump(ckpt, out):
    # weights_only: the file must also pass torch's own restricted loader (the
    # default from torch 2.6 on).
    obj = torch.load(ckpt, map_location="cpu", weights_only=True)
    exp = Expectations(out)
    sd = obj.get("network", obj) if isinstance(obj, dict) else obj
    epoch = obj.get("epoch") if isinstance(obj, dict) else None
    exp.add(os.path.basename(ckpt), "zip", "", "network", epoch, sd)
    exp.write(keys=list(obj.keys()))


def main():
    mode = sys.argv[1]
    out = sys.argv[-1]
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    if mode == "formats":
        formats(out)
    elif mode == "security":
        security(out)
    elif mode == "dump":
        dump(sys.argv[2], out)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
