"""How the C++/CUDA ops are compiled: the project's one set of build flags and sources.

Used by ``setup.py`` (ahead-of-time build, loaded by path: it imports nothing, torch included)
and by :mod:`._jit` (compiled on first use). Torch-free at import.
"""
import glob
import hashlib
import os
import subprocess
import sys
from typing import List, Optional, Tuple

# torch >= 2.14's headers need C++20; the sources are C++17 and C++20 clean. Given explicitly
# (torch adds its own default only when no -std is present) so that g++ and nvcc always agree.
CXX_FLAGS = ['-O3', '-std=c++20', '-fopenmp']
NVCC_FLAGS = ['-O3', '-std=c++20']
LINK_FLAGS = ['-fopenmp']
# Compute capabilities compiled when no GPU is visible: sm_80 machine code also runs on 8.6 / 8.9
# (same major version); the 9.0 PTX is JIT-compiled by the driver on newer GPUs.
DEFAULT_CUDA_ARCH_LIST = '8.0;9.0+PTX'
SOURCE_PATTERNS = ('*.cpp', '*.cu', '*.h', '*.cuh')

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_root(package_dir: str = PACKAGE_DIR) -> Optional[str]:
    """The ``csrc`` folder: the repository's own when the package sits in a checkout (next to
    ``setup.py``; an editable install), else the copy an installed package carries in
    ``.mim/csrc``."""
    checkout = os.path.dirname(package_dir)
    candidates = [os.path.join(package_dir, '.mim', 'csrc')]
    if os.path.exists(os.path.join(checkout, 'setup.py')):
        candidates.insert(0, os.path.join(checkout, 'csrc'))
    for candidate in candidates:
        if glob.glob(os.path.join(candidate, '**', '*.cpp'), recursive=True):
            return candidate
    return None


def sources(root: str, with_cuda: bool) -> List[str]:
    """The translation units under ``root``: every ``.cpp``, and every ``.cu`` with CUDA."""
    patterns = ('*.cpp', '*.cu') if with_cuda else ('*.cpp', )
    return sorted(path for pattern in patterns
                  for path in glob.glob(os.path.join(root, '**', pattern), recursive=True))


def sources_hash(root: str) -> str:
    """SHA-256 of every source and header under ``root`` (relative paths and contents) and of the
    build flags: a cache key part that changes whenever the compiled library would."""
    digest = hashlib.sha256(repr((CXX_FLAGS, NVCC_FLAGS, LINK_FLAGS)).encode())
    paths = sorted(path for pattern in SOURCE_PATTERNS
                   for path in glob.glob(os.path.join(root, '**', pattern), recursive=True))
    for path in paths:
        digest.update(os.path.relpath(path, root).replace(os.sep, '/').encode() + b'\0')
        with open(path, 'rb') as f:
            digest.update(f.read() + b'\0')
    return digest.hexdigest()


def cuda_library_include_dirs(torch_dir: str, cuda_version: str) -> List[str]:
    """Include folders of the CUDA library wheels that a CUDA build of torch depends on.

    ``ATen/cuda/CUDAContext.h`` includes cuSPARSE, cuBLAS and cuSOLVER headers, which a bare CUDA
    toolkit (compiler and runtime only) lacks and pip's ``nvidia-*`` wheels bring: in one folder
    ``nvidia/cu<major>/include`` from CUDA 13 on, in one folder per library
    (``nvidia/cusparse/include``...) for CUDA 12.
    """
    nvidia = os.path.join(os.path.dirname(torch_dir), 'nvidia')
    merged = os.path.join(nvidia, f'cu{cuda_version.split(".")[0]}', 'include')
    if os.path.isdir(merged):
        return [merged]
    return sorted(glob.glob(os.path.join(nvidia, '*', 'include')))


def cuda_system_include_flags(torch_dir: str, cuda_version: str) -> List[str]:
    """``-isystem`` flags for :func:`cuda_library_include_dirs`: after torch's ``-I`` paths, so
    the toolkit's own headers win and the wheels only fill in."""
    return [flag for path in cuda_library_include_dirs(torch_dir, cuda_version)
            for flag in ('-isystem', path)]


def with_cuda(torch, cuda_home: Optional[str]) -> bool:
    """Whether a build compiles the CUDA kernels: a CUDA build of torch, a toolkit
    (``cuda_home``) and a visible GPU, or ``FORCE_CUDA=1`` to cross-compile without one."""
    visible = torch.cuda.is_available() or os.environ.get('FORCE_CUDA', '0') == '1'
    return torch.version.cuda is not None and cuda_home is not None and visible


def cuda_compile_flags(torch) -> Tuple[List[str], List[str]]:
    """(g++ flags, nvcc flags) of a CUDA build; without a visible GPU and without
    ``TORCH_CUDA_ARCH_LIST``, sets that to :data:`DEFAULT_CUDA_ARCH_LIST` (torch would have no
    architecture to pick; torch 2.14 fails with IndexError)."""
    if not torch.cuda.is_available() and not os.environ.get('TORCH_CUDA_ARCH_LIST'):
        os.environ['TORCH_CUDA_ARCH_LIST'] = DEFAULT_CUDA_ARCH_LIST
    includes = cuda_system_include_flags(os.path.dirname(torch.__file__), torch.version.cuda)
    return CXX_FLAGS + includes, NVCC_FLAGS + includes


def build_with_setup_py(python: str, env: dict, setup_args: list, verbose: bool,
                        root: str = os.path.dirname(PACKAGE_DIR)) -> None:
    """Runs ``python setup.py SETUP_ARGS`` in the repository ``root`` (ahead-of-time builds of
    ``tools/check_cuda_build.py`` and ``tools/gpu_check.py``)."""
    env = dict(env, MAX_JOBS=env.get('MAX_JOBS', str(min(os.cpu_count() or 1, 8))))
    result = subprocess.run([python, 'setup.py', '-q', *setup_args], cwd=root, env=env,
                            capture_output=not verbose, text=True)
    if result.returncode != 0:
        if not verbose:
            sys.stderr.write(result.stdout[-6000:] + result.stderr[-6000:])
        raise RuntimeError(f'setup.py {" ".join(setup_args)} exited {result.returncode}')
