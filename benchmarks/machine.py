"""The machine line every benchmark prints beside its table (GPU name, or CPU model and thread count)."""

from __future__ import annotations

import platform

import torch


def describe(device: torch.device) -> str:
    """``"<GPU name>"`` on CUDA, else ``"<CPU model>, <threads> threads"`` (the model from ``/proc/cpuinfo``)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"
