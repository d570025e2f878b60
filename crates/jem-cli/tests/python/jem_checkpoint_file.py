"""What both checks of a jem checkpoint share: the raw safetensors layout, jem's checksum and
the names the reference WRN (wgrathwohl/JEM) gives its state dict.

Needs nothing beyond the standard library.
"""

import json

PREFIXES = ("model.", "optim.", "buffer.")


def fnv1a(h, data):
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_raw(path):
    """The safetensors header (without `__metadata__`), the metadata, and each tensor's bytes
    as stored, from the header's data offsets."""
    with open(path, "rb") as fh:
        data = fh.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    raw = {
        name: data[base + info["data_offsets"][0] : base + info["data_offsets"][1]]
        for name, info in header.items()
    }
    return header, meta, raw


def check_file(path, meta, names):
    """Exits with the reason unless `meta` holds jem's config and checksum, every tensor is
    `model.*`, `optim.*` or `buffer.*`, and the checksum (FNV-1a 64 over the `jem` text, then
    every tensor's bytes in name order) recomputes. Returns the `[model]` config."""
    if meta is None or "jem" not in meta or "jem.checksum" not in meta:
        raise SystemExit(f"{path}: __metadata__ lacks `jem` / `jem.checksum`: {meta}")
    foreign = [n for n in names if not n.startswith(PREFIXES)]
    if foreign:
        raise SystemExit(f"{path}: tensors outside model./optim./buffer.: {foreign}")
    _, _, raw = read_raw(path)
    h = fnv1a(0xCBF29CE484222325, meta["jem"].encode())
    for name in sorted(names):
        h = fnv1a(h, raw[name])
    if f"{h:016x}" != meta["jem.checksum"]:
        raise SystemExit(f"{path}: checksum {h:016x} recomputed, {meta['jem.checksum']} stored")
    return json.loads(meta["jem"])["config"]["model"]


def reference_state_shapes(cfg):
    """The state-dict names and shapes of the reference's WRN for a jem `[model]` config
    (batch norm's `num_batches_tracked` left out: jem keeps no such counter)."""
    k = cfg["widen_factor"]
    n = (cfg["depth"] - 4) // 6
    widths = [16, 16 * k, 32 * k, 64 * k]
    shapes = {}

    def conv(name, c_in, c_out, size):
        shapes[f"{name}.weight"] = [c_out, c_in, size, size]
        shapes[f"{name}.bias"] = [c_out]

    def norm(name, c):
        if cfg["norm"] == "none":
            return
        shapes[f"{name}.weight"] = [c]
        shapes[f"{name}.bias"] = [c]
        if cfg["norm"] == "batch":
            shapes[f"{name}.running_mean"] = [c]
            shapes[f"{name}.running_var"] = [c]

    conv("f.conv1", cfg["in_channels"], widths[0], 3)
    c_in = widths[0]
    for stage, stride in enumerate([1, 2, 2], start=1):
        for i in range(n):
            block = f"f.layer{stage}.{i}"
            c_out = widths[stage]
            norm(f"{block}.bn1", c_in)
            conv(f"{block}.conv1", c_in, c_out, 3)
            norm(f"{block}.bn2", c_out)
            conv(f"{block}.conv2", c_out, c_out, 3)
            if (stride if i == 0 else 1) != 1 or c_in != c_out:
                conv(f"{block}.shortcut.0", c_in, c_out, 1)
            c_in = c_out
    norm("f.bn1", widths[3])
    if cfg.get("uncond", False):
        shapes["energy_output.weight"] = [1, widths[3]]
        shapes["energy_output.bias"] = [1]
    shapes["class_output.weight"] = [cfg["num_classes"], widths[3]]
    shapes["class_output.bias"] = [cfg["num_classes"]]
    return shapes
