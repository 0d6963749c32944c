#!/usr/bin/env python3
"""The PyTorch + transformers reference for tools/bench/learner_scale_bench: the same SFT step (token-mean
cross-entropy of the response) and RL step (a no-grad log-prob pass, then the clipped-ratio loss) on the
same model directory and the same batch (written by the bench with --batch_out), with bf16
forward/backward, gradient checkpointing, and AdamW over an fp32 master copy (the bf16 weights refreshed
from it after each step). Prints one JSON line: step seconds, tokens/s and peak allocated bytes.

    python3 tools/gpu/hf_learner_step.py MODEL_DIR BATCH.safetensors [STEPS]
"""
import json
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import Qwen2_5_VLForConditionalGeneration

model_dir, batch_path = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 2
dev = torch.device("cuda")

t0 = time.time()
try:
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa")
except TypeError:
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, torch_dtype=torch.bfloat16,
                                                               attn_implementation="sdpa")
model.to(dev)
model.config.use_cache = False
model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
model.train()
load_seconds = time.time() - t0
params = [p for p in model.parameters() if p.requires_grad]
master = [p.detach().float().clone().requires_grad_(True) for p in params]
opt = torch.optim.AdamW(master, lr=1e-5, betas=(0.9, 0.95), weight_decay=0.0, eps=1e-8)

b = load_file(batch_path)
ids = b["input_ids"].to(dev)
pos = b["position_ids"].to(dev)
pix = b["pixel_values"].to(dev, torch.bfloat16)
grid = b["image_grid_thw"].to(dev)
first = int(b["first_target"][0])
L = ids.shape[1]
R = L - first
targets = ids[:, first:]
use_positions = True


keep_logits = True  # logits only for the scored positions (transformers >= 4.50: logits_to_keep)


def run_model(**kwargs):
    global keep_logits
    if keep_logits:
        try:
            return model(logits_to_keep=R + 1, **kwargs)
        except TypeError:
            keep_logits = False
    return model(**kwargs)


def logprobs():
    global use_positions
    kwargs = dict(input_ids=ids, pixel_values=pix, image_grid_thw=grid, use_cache=False)
    if use_positions:
        try:
            out = run_model(position_ids=pos, **kwargs)
        except Exception as e:  # a transformers that wants another position layout: its own positions
            print("position_ids refused (", type(e).__name__, e, "); transformers computes them", file=sys.stderr)
            use_positions = False
            out = run_model(**kwargs)
    else:
        out = run_model(**kwargs)
    logits = out.logits[:, -(R + 1):-1].float()
    return torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def apply():
    for p, m in zip(params, master):
        m.grad = p.grad.float() if p.grad is not None else torch.zeros_like(m)
        p.grad = None
    torch.nn.utils.clip_grad_norm_(master, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        for p, m in zip(params, master):
            p.copy_(m)


def timed(step_fn):
    total = 0.0
    for i in range(steps + 1):  # the first warms up
        torch.cuda.synchronize()
        t = time.time()
        loss = step_fn()
        torch.cuda.synchronize()
        if i > 0:
            total += time.time() - t
    return total / steps, loss


def sft():
    loss = -logprobs().mean()
    loss.backward()
    apply()
    return loss.item()


adv = torch.linspace(-1.0, 1.0, R, device=dev).view(1, R)


def rl():
    with torch.no_grad():
        model.eval()
        old = logprobs()
        model.train()
    lp = logprobs()
    ld = (lp - old).clamp(min=-6.907755278982137, max=6.907755278982137)  # StableReinforce pre-clip [1e-3, 1e3]
    ratio = ld.exp()
    loss = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
    loss.backward()
    apply()
    return loss.item()


torch.cuda.reset_peak_memory_stats()
sft_s, sft_loss = timed(sft)
sft_peak = torch.cuda.max_memory_allocated()
torch.cuda.reset_peak_memory_stats()
rl_s, rl_loss = timed(rl)
rl_peak = torch.cuda.max_memory_allocated()
print(json.dumps(dict(logits_to_keep=keep_logits, load_seconds=load_seconds, tokens=L, sft_step_seconds=sft_s, sft_tokens_per_second=L / sft_s,
                      sft_loss=sft_loss, sft_peak_bytes=sft_peak, rl_step_seconds=rl_s, rl_tokens_per_second=L / rl_s,
                      rl_loss=rl_loss, rl_peak_bytes=rl_peak, positions_passed=use_positions)))
