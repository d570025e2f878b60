"""Opens a jem checkpoint from PyTorch and checks it against numbers jem wrote.

    python3 check_jem_checkpoint.py CHECKPOINT EXPECTED.json [--require-safetensors]

CHECKPOINT is a jem training checkpoint (`last.ckpt`, a safetensors file). The script
  * lists and loads it with `safetensors.safe_open(path, "pt")`: every tensor is `model.*`,
    `optim.*` or `buffer.*`, and `__metadata__` holds `jem` (JSON) and `jem.checksum`. Without
    the `safetensors` package it says so on stderr (`skipped: safe_open ...`) and reads the file
    with torch alone (the format is an 8-byte header length, a JSON header, raw bytes), unless
    `--require-safetensors` is given, which makes the missing package an error;
  * recomputes the checksum (FNV-1a 64 over the `jem` text, then every tensor's bytes in name
    order) and compares it with `jem.checksum`;
  * builds a Wide-ResNet with the reference's module names (wgrathwohl/JEM: `f.conv1`,
    `f.layer1.0.bn1`, `f.layer1.0.shortcut.0`, `f.bn1`, `class_output`, `energy_output`) from the
    `[model]` section of the checkpoint's config, and loads the `model.` tensors (prefix
    stripped) with `load_state_dict(strict=True)`. jem keeps no batch-norm
    `num_batches_tracked` counter (its momentum is fixed), so those are filled with 0 first:
    every other name must match exactly;
  * runs the eval-mode network on EXPECTED.json's inputs and compares the logits with the
    ones jem computed (`max |difference| <= tolerance`).

Exit status 0 and a last line `ok: ...` when everything holds, 1 with the reason otherwise.
Needs torch; safetensors when available (see above).
"""

import json
import sys

import torch
import torch.nn.functional as F
from torch import nn

from jem_checkpoint_file import check_file, read_raw

try:
    from safetensors import safe_open
except ImportError as e:  # reported in main()
    safe_open = None
    SAFETENSORS_MISSING = str(e)

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def load_with_torch(path):
    """safetensors read with torch alone (little-endian, C order): metadata and tensors."""
    header, meta, raw = read_raw(path)
    tensors = {}
    for name, info in header.items():
        dtype = DTYPES[info["dtype"]]
        if len(raw[name]) == 0:
            tensors[name] = torch.empty(info["shape"], dtype=dtype)
        else:
            flat = torch.frombuffer(bytearray(raw[name]), dtype=dtype)
            tensors[name] = flat.reshape(info["shape"]).clone()
    return meta, tensors


def norm_layer(kind, channels):
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels, momentum=0.9)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    raise ValueError(f"unknown norm {kind!r}")


def activation(cfg):
    if cfg.get("activation", "leaky_relu") == "silu":
        return nn.SiLU()
    return nn.LeakyReLU(cfg["leak"])


class WideBasic(nn.Module):
    def __init__(self, c_in, c_out, stride, cfg):
        super().__init__()
        self.act = activation(cfg)
        self.bn1 = norm_layer(cfg["norm"], c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=True)
        self.dropout = nn.Dropout(cfg.get("dropout", 0.0))
        self.bn2 = norm_layer(cfg["norm"], c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=stride, padding=1, bias=True)
        layers = []
        if stride != 1 or c_in != c_out:
            layers.append(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=True))
        self.shortcut = nn.Sequential(*layers)

    def forward(self, x):
        out = self.dropout(self.conv1(self.act(self.bn1(x))))
        out = self.conv2(self.act(self.bn2(out)))
        return out + self.shortcut(x)


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        k = cfg["widen_factor"]
        n = (cfg["depth"] - 4) // 6
        widths = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(cfg["in_channels"], widths[0], 3, padding=1, bias=True)
        c_in = widths[0]
        for stage, stride in enumerate([1, 2, 2], start=1):
            blocks = []
            for i in range(n):
                blocks.append(WideBasic(c_in, widths[stage], stride if i == 0 else 1, cfg))
                c_in = widths[stage]
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.bn1 = norm_layer(cfg["norm"], widths[3])
        self.act = activation(cfg)
        self.last_dim = widths[3]

    def forward(self, x):
        out = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        out = self.act(self.bn1(out))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)


class JEM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.f = Backbone(cfg)
        if cfg.get("uncond", False):
            self.energy_output = nn.Linear(self.f.last_dim, 1)
        self.class_output = nn.Linear(self.f.last_dim, cfg["num_classes"])

    def forward(self, x):
        return self.class_output(self.f(x))


def main(path, expected_path, require_safetensors):
    with open(expected_path) as fh:
        expected = json.load(fh)
    if safe_open is not None:
        reader = "safetensors.safe_open"
        with safe_open(path, "pt") as f:
            meta = f.metadata()
            names = sorted(f.keys())
            tensors = {name: f.get_tensor(name) for name in names}
        # The package and the torch-only reader agree bit for bit.
        _, own = load_with_torch(path)
        if sorted(own) != names or any(not torch.equal(own[n], tensors[n]) for n in names):
            sys.exit(f"{path}: safe_open and the torch-only reader disagree")
    elif require_safetensors:
        sys.exit(f"--require-safetensors: the safetensors package is not importable ({SAFETENSORS_MISSING})")
    else:
        reader = "torch only"
        print(
            f"skipped: safe_open (the safetensors package is not installed: {SAFETENSORS_MISSING}); "
            "the file is read with torch alone",
            file=sys.stderr,
        )
        meta, tensors = load_with_torch(path)
        names = sorted(tensors)
    cfg = check_file(path, meta, names)
    model = JEM(cfg)
    state = {n[len("model."):]: t for n, t in tensors.items() if n.startswith("model.")}
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            state.setdefault(f"{name}.num_batches_tracked", torch.tensor(0))
    model.load_state_dict(state, strict=True)
    model.eval()

    x = torch.tensor(expected["input"], dtype=torch.float32).reshape(expected["shape"])
    want = torch.tensor(expected["logits"], dtype=torch.float32).reshape(x.shape[0], -1)
    with torch.no_grad():
        got = model(x)
    diff = (got - want).abs().max().item()
    if not diff <= expected["tolerance"]:
        sys.exit(f"{path}: logits differ from jem's by {diff:.3g} (tolerance {expected['tolerance']})")
    buffer = tensors.get("buffer.samples")
    print(
        f"ok: read with {reader}: {len(names)} tensors ({len(state)} model), "
        f"checksum {meta['jem.checksum']}, "
        f"buffer {list(buffer.shape) if buffer is not None else None}, "
        f"torch {torch.__version__}, max |logit difference| {diff:.3g}"
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--require-safetensors"]
    if len(args) != 2:
        sys.exit(__doc__)
    main(args[0], args[1], "--require-safetensors" in sys.argv[1:])
