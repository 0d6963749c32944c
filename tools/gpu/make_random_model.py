#!/usr/bin/env python3
"""Writes a randomly initialised Qwen2.5-VL with the published 3B config's dimensions (text 36 x 2048,
16 heads / 2 kv, SwiGLU 11008, tied 151936 vocabulary; vision 32 x 1280, windows of 112 px, full
attention in blocks 7/15/23/31, merger to 2048) in bf16 to OUT_DIR (config.json + model.safetensors), for
tools/gpu/learner_scale.sh. No network: the config is written here, the weights are torch's init.

    python3 tools/gpu/make_random_model.py OUT_DIR
"""
import json
import os
import sys
import time

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

OUT = sys.argv[1]
IDS = dict(bos_token_id=151643, eos_token_id=151645, vision_start_token_id=151652, vision_end_token_id=151653,
           vision_token_id=151654, image_token_id=151655, video_token_id=151656)
TEXT = dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
            num_attention_heads=16, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0,
            max_position_embeddings=128000, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
            hidden_act="silu", tie_word_embeddings=True, use_sliding_window=False, sliding_window=32768,
            max_window_layers=70, attention_dropout=0.0, initializer_range=0.02)
VISION = dict(depth=32, hidden_size=1280, num_heads=16, intermediate_size=3420, out_hidden_size=2048, patch_size=14,
              temporal_patch_size=2, spatial_merge_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
              in_channels=3, in_chans=3, tokens_per_second=2, hidden_act="silu")


def make_config():
    try:  # transformers >= 4.52: nested text_config
        config = Qwen2_5_VLConfig(text_config=dict(TEXT, **IDS), vision_config=VISION, **IDS, tie_word_embeddings=True)
        assert config.get_text_config().hidden_size == 2048
    except Exception:
        config = Qwen2_5_VLConfig(vision_config=VISION, **TEXT, **IDS)
    text = config.get_text_config()
    rope = getattr(text, "rope_parameters", None) or getattr(text, "rope_scaling", None) or {}
    if list(rope.get("mrope_section", [])) != [16, 24, 24]:  # transformers 5 keeps it in rope_parameters
        if hasattr(text, "rope_parameters"):
            text.rope_parameters = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}
        else:
            text.rope_scaling = {"type": "mrope", "mrope_section": [16, 24, 24]}
    return config


def main():
    start = time.time()
    os.makedirs(OUT, exist_ok=True)
    config = make_config()
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        try:
            model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
        except TypeError:
            model = Qwen2_5_VLForConditionalGeneration._from_config(config, torch_dtype=torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    print(f"random Qwen2.5-VL-3B shape: {n / 1e9:.3f}e9 parameters, init {time.time() - start:.1f} s", flush=True)
    model.save_pretrained(OUT, safe_serialization=True, max_shard_size="50GB")
    print(f"saved to {OUT} in {time.time() - start:.1f} s: {sorted(os.listdir(OUT))}", flush=True)


if __name__ == "__main__":
    main()
