"""What one training step costs, and why the trainer's thread policy is what it is, in ONE run.

    python bench/train_step.py    # -> bench/results/train_step.json (about 1 minute)

Each configuration runs in its own process (OpenMP reads its environment at start): a step of the
default model (batch 128, AdamW, gradient clipping) in fp32 and bf16 autocast, on 1 and 2 threads,
alone and beside a busy loop (one competing CPU-bound process), and with OMP_WAIT_POLICY=passive.
Also: the test-set evaluation of one epoch (10,000 images, fp32, inference mode) and the share of a
step spent in oneDNN's LSTM forward and backward (torch profiler).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from edge_lstm.environment import describe

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys, time, torch
from torch import nn
from edge_lstm.training.model import RecurrentClassifier
threads, precision = int(sys.argv[1]), sys.argv[2]
torch.set_num_threads(threads)
torch.manual_seed(0)
model = RecurrentClassifier()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x, y = torch.rand(128, 28, 28), torch.randint(0, 10, (128,))

def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

for _ in range(10):
    step()
times = []
for _ in range(60):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
times.sort()
out = {"step_ms": 1000 * times[len(times) // 2]}
if len(sys.argv) > 3:  # the extras, once
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(20):
            step()
    rows = prof.key_averages()
    total = sum(r.self_cpu_time_total for r in rows)
    out["lstm_share"] = sum(r.self_cpu_time_total for r in rows if r.key.startswith("aten::mkldnn_rnn_layer")) / total
    test = torch.rand(10000, 28, 28)
    with torch.inference_mode():
        model.eval(); [model(test[i:i + 2000]) for i in range(0, 10000, 2000)]
        t0 = time.perf_counter(); [model(test[i:i + 2000]) for i in range(0, 10000, 2000)]
        out["eval_10000_s"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def probe(threads: int, precision: str, busy: bool = False, passive: bool = False, extras: bool = False) -> dict:
    env = {**os.environ, **({"OMP_WAIT_POLICY": "PASSIVE"} if passive else {})}
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        args = [sys.executable, "-c", PROBE, str(threads), precision, *(["extras"] if extras else [])]
        proc = subprocess.run(args, capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    for precision in ("fp32", "bf16"):
        for threads in (1, 2):
            for busy in (False, True):
                r = probe(threads, precision, busy)
                rows.append({"precision": precision, "threads": threads, "busy_neighbour": busy, "passive": False, **r})
                print(rows[-1], flush=True)
        for busy in (False, True):
            r = probe(2, precision, busy, passive=True)
            rows.append({"precision": precision, "threads": 2, "busy_neighbour": busy, "passive": True, **r})
            print(rows[-1], flush=True)
    extras = probe(2, "fp32", extras=True)
    report = {
        "command": "python bench/train_step.py",
        "steps": rows,
        "fp32_2_threads": extras,
        "environment": describe(),
    }
    out = ROOT / "bench" / "results" / "train_step.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(extras))


if __name__ == "__main__":
    main()
