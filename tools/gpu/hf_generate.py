#!/usr/bin/env python3
"""transformers' generate on the prompts gpu_generate_bench wrote (tools/gpu/generation_speed.sh): the same
safetensors model (bf16, sdpa attention), the same input_ids and image, greedy, exactly NEW tokens per
row (min_new_tokens = max_new_tokens), timed per batch size after a short warm-up.

    python3 tools/gpu/hf_generate.py MODEL_DIR PROMPTS.safetensors OUT.json [--batches 1,32,128] [--new 256]
"""
import argparse
import inspect
import json
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import Qwen2_5_VLForConditionalGeneration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("prompts")
    ap.add_argument("out")
    ap.add_argument("--batches", default="1,32,128")
    ap.add_argument("--new", type=int, default=256)
    args = ap.parse_args()
    start = time.time()
    model = None
    for kwargs in (dict(dtype=torch.bfloat16, device_map="cuda"), dict(dtype=torch.bfloat16),
                   dict(torch_dtype=torch.bfloat16)):  # transformers 5 / without accelerate / 4.x
        try:
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(args.model_dir, attn_implementation="sdpa",
                                                                       **kwargs)
            break
        except (TypeError, ValueError, ImportError) as e:
            print(f"from_pretrained({kwargs}): {type(e).__name__}: {e}", flush=True)
    model = model.cuda().eval()
    print(f"loaded in {time.time() - start:.1f} s", flush=True)
    p = load_file(args.prompts)
    ids_all = p["input_ids"].cuda()
    image = p["pixel_values"].cuda().to(torch.bfloat16)
    grid = p["image_grid_thw"].cuda()
    image_token = model.config.image_token_id
    takes_types = "mm_token_type_ids" in inspect.signature(model.forward).parameters

    def generate(batch, new):
        ids = ids_all[:batch]
        kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=image.repeat(batch, 1),
                      image_grid_thw=grid.repeat(batch, 1), max_new_tokens=new, min_new_tokens=new, do_sample=False,
                      num_beams=1)
        if takes_types:  # transformers 5 derives the M-RoPE positions from it (1-D positions without)
            kwargs["mm_token_type_ids"] = (ids == image_token).long()
        torch.cuda.synchronize()
        t0 = time.time()
        with torch.no_grad():
            out = model.generate(**kwargs)
        torch.cuda.synchronize()
        return time.time() - t0, out[:, ids.shape[1]:]

    generate(1, 8)
    runs = []
    first_tokens = None
    for b in [int(x) for x in args.batches.split(",")]:
        try:
            seconds, out = generate(b, args.new)
        except Exception as e:  # e.g. out of memory: report and go on
            print(f"batch {b}: {type(e).__name__}: {e}", flush=True)
            runs.append({"batch": b, "error": f"{type(e).__name__}: {e}"[:300]})
            torch.cuda.empty_cache()
            continue
        tokens = out.numel()
        if b == 1:
            first_tokens = out[0].tolist()
        print(f"batch {b}: {tokens} tokens in {seconds:.3f} s = {tokens / seconds:.1f} tokens/s", flush=True)
        runs.append({"batch": b, "total_s": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds})
        # After every batch size: a run cut short by a timeout keeps what it measured.
        json.dump({"runs": runs, "batch1_tokens": first_tokens, "transformers_mm_token_type_ids": takes_types},
                  open(args.out, "w"))


if __name__ == "__main__":
    sys.exit(main())
