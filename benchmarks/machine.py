"""Machine description printed under every benchmark table."""

import os
import platform
import time

import numpy as np
import torch


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe():
    return (f"{time.strftime('%Y-%m-%d')}, {cpu_model()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}, "
            f"torch {torch.__version__}, numpy {np.__version__}")
