"""What the benchmark scripts share: one process per measurement, peak memory, the machine, ratio
cells and random label maps. Torch only (the GPU machine has no OpenMMLab packages)."""
import json
import os
import platform
import subprocess
import sys
from typing import Optional

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_bytes(field: str = 'VmRSS') -> int:
    """A field of /proc/self/status in bytes: ``VmRSS`` (resident set) or ``VmHWM`` (its peak)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{field} not in /proc/self/status')


def reset_peak_rss() -> None:
    """Resets ``VmHWM`` to the current resident set (Linux)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def run_worker(script: str, spec: dict, timeout: float) -> dict:
    """Runs ``script --worker SPEC`` in a fresh process (so that its peak memory is its own) and
    returns the JSON line it prints last, or ``dict(error=...)``."""
    cmd = [sys.executable, os.path.abspath(script), '--worker', json.dumps(spec)]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(error=f'timeout > {timeout} s')
    for line in reversed(out.stdout.splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    tail = (out.stderr.strip().splitlines() or ['no output'])[-1]
    if 'memory' in tail.lower():
        return dict(error='out of memory')
    return dict(error=tail[:160])


def machine_description(device) -> str:
    """The GPU (name, compute capability, CUDA) or the CPU (model, cores, memory, threads, load)."""
    if str(device).startswith('cuda'):
        name = torch.cuda.get_device_name()
        capability = '{}.{}'.format(*torch.cuda.get_device_capability())
        return f'{name} (sm {capability}), torch {torch.__version__}, CUDA {torch.version.cuda}'
    model = platform.machine()
    if os.path.exists('/proc/cpuinfo'):
        model = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                      if line.startswith('model name')), model)
    memory_gib = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    return (f'{model}, {os.cpu_count()} cores, {memory_gib:.0f} GiB, torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads, load average before the run '
            f'{os.getloadavg()[0]:.1f}')


def fmt_ratio(value: Optional[float], ref: Optional[float]) -> str:
    """``value / ref`` as a table cell ('—' when either is missing)."""
    if value is None or ref is None or ref == 0:
        return '—'
    return f'{value / ref:.2f}×'


def random_partition(batch: int, segments: int, size: int, generator: torch.Generator,
                     device, num_classes: int = 150) -> torch.Tensor:
    """(B, size, size) label maps, each a Voronoi partition into ``segments`` of ``num_classes``
    classes."""
    low = 32
    seeds = torch.rand(batch, segments, 2, generator=generator)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, low), torch.linspace(0, 1, low), indexing='ij')
    grid = torch.stack([xs, ys], -1).view(1, -1, 1, 2)
    owner = ((grid - seeds[:, None]) ** 2).sum(-1).argmin(-1).view(batch, 1, low, low)
    classes = torch.stack([torch.randperm(num_classes, generator=generator)[:segments]
                           for _ in range(batch)])
    labels = torch.gather(classes, 1, owner.view(batch, -1)).view(batch, 1, low, low)
    labels = torch.nn.functional.interpolate(labels.float(), size=(size, size), mode='nearest')
    return labels[:, 0].long().to(device)
