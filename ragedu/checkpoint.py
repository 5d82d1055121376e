"""A training run's work directory: each stage's weights and optimizer state, and the loss log.   (notebook 5)

    {stage}.partial.safetensors / .json   a stage stopped mid-way: weights, AdamW's moments, the step reached
    {stage}.done.safetensors / .json      a finished stage: its weights
    train_log.jsonl                       one line per step: {"stage", "step", "loss"} (read back by `read_train_log`)

Running `ragedu train` again with the same work directory resumes where the last run stopped.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ragedu.pretrained import untied_tensors


class Checkpointer:
    """Stage outputs and mid-stage states in a work directory, in safetensors plus JSON; and the loss log."""

    def __init__(self, work_dir: Path):
        self.dir = Path(work_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "train_log.jsonl"

    def done(self, stage: str) -> bool:
        return (self.dir / f"{stage}.done.json").exists()

    def save(self, stage: str, modules: dict, step: int, optimizer=None, done: bool = False) -> None:
        tensors = {f"{name}.{k}": v for name, m in modules.items() for k, v in untied_tensors(m).items()}
        meta = {"stage": stage, "step": step}
        if optimizer is not None:
            state = optimizer.state_dict()
            for i, s in state["state"].items():
                for key, value in s.items():
                    tensors[f"optimizer.{i}.{key}"] = torch.as_tensor(value).clone()
            meta["param_groups"] = state["param_groups"]
        name = f"{stage}.done" if done else f"{stage}.partial"
        save_file(tensors, str(self.dir / f"{name}.safetensors.tmp"))
        (self.dir / f"{name}.safetensors.tmp").replace(self.dir / f"{name}.safetensors")
        (self.dir / f"{name}.json").write_text(json.dumps(meta))
        if done:
            (self.dir / f"{stage}.partial.json").unlink(missing_ok=True)

    def restore(self, stage: str, modules: dict, optimizer=None, done: bool = False) -> int:
        """Load a stage's saved state into `modules` (and `optimizer`); return the step it reached (0 if none)."""
        name = f"{stage}.done" if done else f"{stage}.partial"
        if not (self.dir / f"{name}.json").exists():
            return 0
        meta = json.loads((self.dir / f"{name}.json").read_text())
        tensors = load_file(str(self.dir / f"{name}.safetensors"))
        for mod_name, module in modules.items():
            prefix = f"{mod_name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                                   strict=False)
            if hasattr(module, "tie_weights"):
                module.tie_weights()
        if optimizer is not None and "param_groups" in meta:
            state: dict = {}
            for key, value in tensors.items():
                if key.startswith("optimizer."):
                    _, i, name_ = key.split(".", 2)
                    state.setdefault(int(i), {})[name_] = value
            optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        return meta["step"]

    def log(self, stage: str, step: int, loss: float) -> None:
        with self.log_path.open("a") as f:
            f.write(json.dumps({"stage": stage, "step": step, "loss": round(loss, 5)}) + "\n")

    def trim_log(self, stage: str, step: int) -> None:
        """On resume, forget log lines this stage wrote after its checkpoint."""
        if not self.log_path.exists():
            return
        rows = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r["stage"] != stage or r["step"] <= step]
        self.log_path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def read_train_log(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """train_log.jsonl ({"stage", "step", "loss"} a line) -> stage -> (steps, losses), stages in log order."""
    curves: dict[str, tuple[list, list]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            steps, losses = curves.setdefault(row["stage"], ([], []))
            steps.append(row["step"])
            losses.append(row["loss"])
    return {stage: (np.asarray(steps), np.asarray(losses, dtype=float)) for stage, (steps, losses) in curves.items()}
