"""Opens a jem checkpoint with the `safetensors` package and numpy (no torch) and checks it
against numbers jem wrote.

    python3 check_jem_checkpoint_numpy.py CHECKPOINT EXPECTED.json

CHECKPOINT is a jem training checkpoint (`last.ckpt`, a safetensors file). The script
  * lists and loads it with `safetensors.safe_open(path, "np")`, and checks that the package
    and a reader of the raw layout agree byte for byte;
  * checks `__metadata__` (`jem`, `jem.checksum`), the tensor prefixes and the checksum
    (jem_checkpoint_file.py);
  * checks that the `model.` tensors, prefix stripped, are exactly the state dict of the
    reference's Wide-ResNet (wgrathwohl/JEM module names) for the checkpoint's `[model]`
    config, name for name and shape for shape, as `load_state_dict(strict=True)` would;
  * runs that network in numpy (float64, eval mode) from those tensors on EXPECTED.json's
    inputs and compares the logits with jem's (`max |difference| <= tolerance`).

Exit status 0 and a last line `ok: ...` when everything holds, 1 with the reason otherwise.
"""

import json
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from safetensors import safe_open

from jem_checkpoint_file import check_file, read_raw, reference_state_shapes

NORM_EPS = 1e-5  # jem's and torch's batch/instance/group norm epsilon


def conv2d(x, w, b, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", windows, w) + b[None, :, None, None]


def norm(x, state, name, kind):
    if kind == "none":
        return x
    if kind == "batch":
        mean = state[f"{name}.running_mean"][None, :, None, None]
        var = state[f"{name}.running_var"][None, :, None, None]
    elif kind == "instance":
        mean = x.mean(axis=(2, 3), keepdims=True)
        var = x.var(axis=(2, 3), keepdims=True)
    elif kind == "layer":  # GroupNorm(1, C)
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        var = x.var(axis=(1, 2, 3), keepdims=True)
    else:
        raise SystemExit(f"unknown norm {kind!r}")
    w = state[f"{name}.weight"][None, :, None, None]
    b = state[f"{name}.bias"][None, :, None, None]
    return (x - mean) / np.sqrt(var + NORM_EPS) * w + b


def activation(cfg):
    if cfg.get("activation", "leaky_relu") == "silu":
        return lambda x: x / (1.0 + np.exp(-x))
    leak = cfg["leak"]
    return lambda x: np.where(x >= 0, x, leak * x)


def logits(state, cfg, x):
    """The reference WRN's eval-mode forward pass (`class_output(f(x))`)."""
    act = activation(cfg)
    kind = cfg["norm"]
    n = (cfg["depth"] - 4) // 6
    out = conv2d(x, state["f.conv1.weight"], state["f.conv1.bias"], 1, 1)
    for stage, stride in enumerate([1, 2, 2], start=1):
        for i in range(n):
            block = f"f.layer{stage}.{i}"
            s = stride if i == 0 else 1
            h = conv2d(act(norm(out, state, f"{block}.bn1", kind)),
                       state[f"{block}.conv1.weight"], state[f"{block}.conv1.bias"], 1, 1)
            h = conv2d(act(norm(h, state, f"{block}.bn2", kind)),
                       state[f"{block}.conv2.weight"], state[f"{block}.conv2.bias"], s, 1)
            if f"{block}.shortcut.0.weight" in state:
                out = conv2d(out, state[f"{block}.shortcut.0.weight"],
                             state[f"{block}.shortcut.0.bias"], s, 0)
            out = h + out
    out = act(norm(out, state, "f.bn1", kind)).mean(axis=(2, 3))
    return out @ state["class_output.weight"].T + state["class_output.bias"]


def main(path, expected_path):
    with open(expected_path) as fh:
        expected = json.load(fh)
    with safe_open(path, "np") as f:
        meta = f.metadata()
        names = sorted(f.keys())
        tensors = {name: f.get_tensor(name) for name in names}
    header, _, raw = read_raw(path)
    if sorted(header) != names or any(tensors[n].tobytes() != raw[n] for n in names):
        raise SystemExit(f"{path}: safe_open and the raw layout disagree")
    cfg = check_file(path, meta, names)

    state = {n[len("model."):]: t.astype(np.float64) for n, t in tensors.items() if n.startswith("model.")}
    want_shapes = reference_state_shapes(cfg)
    got_shapes = {n: list(t.shape) for n, t in state.items()}
    if got_shapes != want_shapes:
        missing = sorted(set(want_shapes) - set(got_shapes))
        unexpected = sorted(set(got_shapes) - set(want_shapes))
        wrong = sorted(n for n in set(want_shapes) & set(got_shapes) if want_shapes[n] != got_shapes[n])
        raise SystemExit(
            f"{path}: not the reference's state dict: missing {missing}, unexpected {unexpected}, "
            f"wrong shapes {[(n, got_shapes[n], want_shapes[n]) for n in wrong]}"
        )

    x = np.asarray(expected["input"], dtype=np.float64).reshape(expected["shape"])
    want = np.asarray(expected["logits"], dtype=np.float64).reshape(x.shape[0], -1)
    got = logits(state, cfg, x)
    diff = float(np.abs(got - want).max())
    if not diff <= expected["tolerance"]:
        raise SystemExit(f"{path}: logits differ from jem's by {diff:.3g} (tolerance {expected['tolerance']})")
    buffer = tensors.get("buffer.samples")
    print(
        f"ok: read with safetensors.safe_open(np): {len(names)} tensors ({len(state)} model, "
        f"the reference's names), checksum {meta['jem.checksum']}, "
        f"buffer {list(buffer.shape) if buffer is not None else None}, "
        f"numpy {np.__version__}, max |logit difference| {diff:.3g}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
