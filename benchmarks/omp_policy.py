"""Training steps per second with OpenMP's threads spinning (ACTIVE) or sleeping (PASSIVE) between ops.

    python benchmarks/omp_policy.py [--json] [--steps 60]

ragedu sets OMP_WAIT_POLICY=PASSIVE for interactive use (ragedu/__init__.py) and ACTIVE for `ragedu train` (ragedu/cli.py).
Each policy runs in a fresh process (the policy is read once, when torch starts its threads): denoising steps
of the shipped generator's shape, batch 32, timed after 5 warm-up steps. Both run in this one invocation, so
their ratio is what to read; the load average says how busy the machine was.
"""
import argparse
import json
import os
import subprocess
import sys

STEPS = """
import random, sys, time, torch
import ragedu
from ragedu.stages import denoise_loss
from ragedu.train import TrainConfig
model = ragedu.load_default()
generator = model.generator
loss_fn = denoise_loss(generator, model.retriever.corpus, TrainConfig())
optimizer = torch.optim.AdamW(generator.model.parameters(), lr=1e-5)
generator.model.train()
n = int(sys.argv[1])
for step in range(5 + n):
    if step == 5:
        t = time.perf_counter()
    loss = loss_fn(random.Random(step), 32)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(n / (time.perf_counter() - t))
"""


def steps_per_second(policy: str, steps: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run([sys.executable, "-c", STEPS, str(steps)], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rates = {policy: round(steps_per_second(policy, args.steps), 2) for policy in ("ACTIVE", "PASSIVE")}
    figures = {"denoise_steps_per_second": rates, "active_over_passive": round(rates["ACTIVE"] / rates["PASSIVE"], 2),
               "steps": args.steps, "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
