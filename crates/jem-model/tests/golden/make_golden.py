"""Golden numbers for jem-model, from an independent PyTorch Wide-ResNet.

The network below is written from the structure of the JEM reference
(wgrathwohl/JEM wideresnet.py + the CCF/F wrapper of train_wrn_ebm.py): same module
names, so its state_dict keys are the reference ones. It is NOT the reference file.

Outputs tests/golden/golden.json with
  * parameter counts (sum of p.numel() over .parameters()) for the configs of
    cases.json, both for the module set jem-model builds and for the reference
    state_dict (which also holds the unused f.linear and always energy_output);
  * forward outputs for deterministic weights. The weights exported by the Rust
    side (tests/golden/out/*.safetensors, see tests/golden.rs) are loaded with
    strict=True, which proves the tensor names and shapes agree, and checked to
    equal det_values() so the numbers can be reproduced without the files.

Run:  python tests/golden/make_golden.py   (torch, safetensors; CPU is enough)
"""

import json
import math
import os

import torch
from torch import nn
import torch.nn.functional as F
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))


def make_norm(kind, channels):
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels, momentum=0.9)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    raise ValueError(kind)


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride, cfg):
        super().__init__()
        self.act = nn.LeakyReLU(cfg["leak"])
        self.bn1 = make_norm(cfg["norm"], c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=True)
        self.drop = nn.Dropout(cfg["dropout"])
        self.bn2 = make_norm(cfg["norm"], c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=stride, padding=1, bias=True)
        projection = []
        if stride != 1 or c_in != c_out:
            projection.append(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=True))
        self.shortcut = nn.Sequential(*projection)

    def forward(self, x):
        h = self.drop(self.conv1(self.act(self.bn1(x))))
        h = self.conv2(self.act(self.bn2(h)))
        return h + self.shortcut(x)


class Backbone(nn.Module):
    def __init__(self, cfg, with_unused_linear):
        super().__init__()
        k = cfg["widen_factor"]
        n = (cfg["depth"] - 4) // 6
        widths = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(cfg["in_channels"], widths[0], 3, padding=1, bias=True)
        c_in = widths[0]
        for stage, (c_out, stride) in enumerate(zip(widths[1:], [1, 2, 2]), start=1):
            blocks = []
            for i in range(n):
                blocks.append(Block(c_in, c_out, stride if i == 0 else 1, cfg))
                c_in = c_out
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.bn1 = make_norm(cfg["norm"], widths[3])
        self.act = nn.LeakyReLU(cfg["leak"])
        if with_unused_linear:
            self.linear = nn.Linear(widths[3], cfg["num_classes"])
        self.feature_dim = widths[3]

    def forward(self, x):
        h = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        h = self.act(self.bn1(h))
        if h.shape[-2:] == (8, 8):
            # What the reference does (32x32 inputs); jem-model pools globally.
            return F.avg_pool2d(h, 8).flatten(1)
        return h.mean(dim=(2, 3))


class JemNet(nn.Module):
    """reference_layout=True adds the modules the reference has but never uses."""

    def __init__(self, cfg, reference_layout=False):
        super().__init__()
        self.f = Backbone(cfg, reference_layout)
        if cfg["uncond"] or reference_layout:
            self.energy_output = nn.Linear(self.f.feature_dim, 1)
        self.class_output = nn.Linear(self.f.feature_dim, cfg["num_classes"])
        self.uncond = cfg["uncond"]

    def forward(self, x):
        z = self.f(x)
        logits = self.class_output(z)
        if self.uncond:
            log_px = self.energy_output(z).squeeze(1)
        else:
            log_px = torch.logsumexp(logits, dim=1)
        return logits, log_px


def det_values(name, shape, k):
    """Must stay identical to det_values in tests/golden.rs."""
    numel = math.prod(shape)
    if len(shape) >= 2:
        base, amp = 0.0, math.sqrt(3.0 / (numel // shape[0]))
    elif name.endswith("running_var"):
        base, amp = 1.0, 0.5
    elif name.endswith("running_mean"):
        base, amp = 0.0, 0.2
    elif name.endswith("weight"):
        base, amp = 1.0, 0.2
    else:
        base, amp = 0.0, 0.1
    vals = [base + amp * math.sin(0.731 * i + 1.37 * k + 0.5) for i in range(numel)]
    return torch.tensor(vals, dtype=torch.float64).to(torch.float32).reshape(shape)


def count(model):
    return sum(p.numel() for p in model.parameters())


def flat(t):
    return [float(v) for v in t.detach().reshape(-1)]


def forward_case(case):
    cfg = case["config"]
    model = JemNet(cfg)
    rust_state = load_file(os.path.join(HERE, "out", case["name"] + ".safetensors"))
    # PyTorch keeps num_batches_tracked, which jem-model does not create: it is the
    # only key allowed to be missing.
    result = model.load_state_dict(rust_state, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    assert all(k.endswith("num_batches_tracked") for k in result.missing_keys), result.missing_keys
    if cfg["norm"] != "batch":
        model.load_state_dict(rust_state, strict=True)
    names = sorted(rust_state)
    for k, name in enumerate(names):
        want = det_values(name, list(rust_state[name].shape), k)
        assert torch.equal(rust_state[name], want) or torch.allclose(rust_state[name], want, rtol=0, atol=1e-7), name

    numel = math.prod(case["input_shape"])
    x = torch.tensor([0.9 * math.sin(0.37 * i + 0.1) for i in range(numel)], dtype=torch.float32)
    x = x.reshape(case["input_shape"])
    out = {"name": case["name"], "config": cfg, "input_shape": case["input_shape"], "input": flat(x)}
    model.eval()
    with torch.no_grad():
        logits, log_px = model(x)
    out["logits_eval"], out["log_px_eval"] = flat(logits), flat(log_px)
    out["logits_train"] = out["log_px_train"] = out["bn1_running_var_after_train"] = None
    if case["train_mode"]:
        model.train()
        with torch.no_grad():
            logits, log_px = model(x)
        out["logits_train"], out["log_px_train"] = flat(logits), flat(log_px)
        if cfg["norm"] == "batch":
            out["bn1_running_var_after_train"] = flat(model.f.bn1.running_var)
    return out


def main():
    torch.set_num_threads(2)
    with open(os.path.join(HERE, "cases.json")) as fh:
        cases = json.load(fh)
    counts = []
    for cfg in cases["count_configs"]:
        entry = {"config": cfg, "count": count(JemNet(cfg)), "reference_count": count(JemNet(cfg, True))}
        print(entry)
        counts.append(entry)
    forward = [forward_case(c) for c in cases["forward_cases"]]
    for f in forward:
        print(f["name"], f["logits_eval"][:4], f["log_px_eval"])
    golden = {"generator": "tests/golden/make_golden.py", "torch": torch.__version__,
              "forward": forward, "parameter_counts": counts}
    # One record per line keeps the file small and diffs readable.
    lines = [f'{{"generator": {json.dumps(golden["generator"])}, "torch": {json.dumps(golden["torch"])},']
    lines.append(' "parameter_counts": [')
    lines.append(",\n".join("  " + json.dumps(c) for c in counts) + "],")
    lines.append(' "forward": [')
    lines.append(",\n".join("  " + json.dumps(f, separators=(",", ":")) for f in forward) + "]}")
    with open(os.path.join(HERE, "golden.json"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    json.loads(open(os.path.join(HERE, "golden.json")).read())


if __name__ == "__main__":
    main()
