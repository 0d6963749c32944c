#!/usr/bin/env python3
"""Writes the golden files under testdata/ with Pillow and numpy (run once; outputs are committed).

The expected values are what transformers' Qwen2VLImageProcessor (slow/PIL path) computes,
re-implemented here in ~20 lines of numpy so the fixtures need neither transformers nor torch:
  PIL.Image.open(f).convert("RGB") -> smart_resize -> img.resize((w, h), BICUBIC)
  -> float64 * (1/255) -> float32 -> (x - mean) / std (float32) -> patchify.
Generated with Pillow 9.4.0 / numpy 1.24.2 (Debian 12: python3-pil python3-numpy) against the
system libjpeg-turbo 2.1.5 and libpng 1.6.39 that r1r links.
"""
import json
import math
import os

import numpy as np
from PIL import Image

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def synthetic(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1))
    g = (y * 255 // max(h - 1, 1))
    b = ((x // 3 + y // 5) % 2) * 200 + rng.integers(0, 56, size=(h, w))
    img = np.stack([r, g, b], axis=-1).astype(np.uint8)
    img[h // 3:h // 3 + 4, :, :] = 255  # sharp edges exercise the negative lobes and clamping
    img[:, w // 2, 0] = 0
    return img


def smart_resize(h, w, factor=28, min_pixels=3136, max_pixels=12845056):
    h_bar = round(h / factor) * factor
    w_bar = round(w / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((h * w) / max_pixels)
        h_bar = max(factor, math.floor(h / beta / factor) * factor)
        w_bar = max(factor, math.floor(w / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar = math.ceil(h * beta / factor) * factor
        w_bar = math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


def preprocess(pil):
    h, w = smart_resize(pil.height, pil.width)
    arr = np.asarray(pil.resize((w, h), Image.BICUBIC), dtype=np.uint8)
    x = (arr.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    x = x.transpose(2, 0, 1)[None]  # [1, 3, H, W]
    x = np.tile(x, (2, 1, 1, 1))  # temporal_patch_size = 2
    gh, gw = h // 14, w // 14
    x = x.reshape(1, 2, 3, gh // 2, 2, 14, gw // 2, 2, 14)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(gh * gw, 3 * 2 * 14 * 14)
    return x.astype(np.float32), (1, gh, gw), (h, w)


def main():
    os.makedirs(HERE, exist_ok=True)
    src = synthetic(83, 61, 1)
    Image.fromarray(src).save(os.path.join(HERE, "gradient_83x61.png"))
    rgba = np.concatenate([synthetic(40, 30, 2), np.full((30, 40, 1), 77, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(os.path.join(HERE, "rgba_40x30.png"))
    Image.fromarray(synthetic(40, 30, 3)).convert("P", palette=Image.ADAPTIVE, colors=16).save(
        os.path.join(HERE, "palette_40x30.png"))
    Image.fromarray(synthetic(50, 47, 4)).save(os.path.join(HERE, "photo_50x47.jpg"), quality=90)
    Image.fromarray(synthetic(33, 29, 5)[:, :, 0]).save(os.path.join(HERE, "gray_33x29.jpg"), quality=85)
    # 16-bit grayscale: PIL opens it as mode "I" and convert("RGB") clamps to 255.
    g16 = (np.arange(24 * 8, dtype=np.uint32).reshape(8, 24) * 347 % 65536).astype(np.uint16)
    g16[0, :6] = [0, 1, 254, 255, 256, 65535]
    Image.fromarray(g16).save(os.path.join(HERE, "gray16_24x8.png"))

    meta = {"decode": {}, "resize": [], "preprocess": {}}
    # Decoded pixels as PIL sees them.
    for name in ["gradient_83x61.png", "rgba_40x30.png", "palette_40x30.png", "photo_50x47.jpg", "gray_33x29.jpg",
                 "gray16_24x8.png"]:
        im = Image.open(os.path.join(HERE, name)).convert("RGB")
        np.asarray(im, dtype=np.uint8).tofile(os.path.join(HERE, name + ".rgb"))
        meta["decode"][name] = [im.width, im.height]
    # Resizes: up, down, mixed, non-integer scales, big shrink.
    base = Image.open(os.path.join(HERE, "gradient_83x61.png")).convert("RGB")
    for (w, h) in [(84, 56), (40, 30), (17, 9), (200, 61), (83, 140), (120, 37), (5, 5)]:
        out = base.resize((w, h), Image.BICUBIC)
        fname = f"gradient_resized_{w}x{h}.rgb"
        np.asarray(out, dtype=np.uint8).tofile(os.path.join(HERE, fname))
        meta["resize"].append({"width": w, "height": h, "file": fname})
    # Full preprocessing of two images.
    for name in ["gradient_83x61.png", "photo_50x47.jpg"]:
        pv, grid, hw = preprocess(Image.open(os.path.join(HERE, name)).convert("RGB"))
        pv.tofile(os.path.join(HERE, name + ".pixel_values.f32"))
        meta["preprocess"][name] = {"grid_thw": list(grid), "resized_hw": list(hw), "rows": pv.shape[0],
                                    "cols": pv.shape[1]}
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
