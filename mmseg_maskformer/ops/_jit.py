"""Compiles the ops library on first use when no prebuilt one loads, as DeepSpeed's op builder
JIT-compiles its ops: ``torch.utils.cpp_extension.load`` with ninja, from the sources the package
carries, into a per-user cache keyed by torch version, CUDA version and a hash of the sources and
flags. A second process loads the cached library; a file lock makes concurrent first uses wait
for one build instead of writing the same files.

Cache: ``$MMSEG_MASKFORMER_OPS_CACHE``, else ``$XDG_CACHE_HOME/mmseg-maskformer/ops`` (default
``~/.cache/mmseg-maskformer/ops``).
"""
import os
import sys
import time
from typing import Optional

from . import build_config

LIBRARY_NAME = 'mmseg_maskformer_ops'


def cache_root() -> str:
    if os.environ.get('MMSEG_MASKFORMER_OPS_CACHE'):
        return os.environ['MMSEG_MASKFORMER_OPS_CACHE']
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'mmseg-maskformer', 'ops')


def build_directory(root: str, with_cuda: bool) -> str:
    """The cache folder of this torch, CUDA and source version."""
    import torch
    cuda = f'cu{torch.version.cuda}' if with_cuda else 'cpu'
    key = f'torch{torch.__version__}-{cuda}-{build_config.sources_hash(root)[:16]}'
    return os.path.join(cache_root(), key.replace('+', '_'))


def _last_lines(text: str, count: int = 12) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return '\n'.join(lines[-count:])


def build_and_load(why: str, root: Optional[str] = None) -> Optional[str]:
    """Loads the cached library, compiling it first if needed; returns None, or why it failed.

    Args:
        why: why the prebuilt library is not used (part of the messages).
        root: the sources; default :func:`build_config.source_root`.
    """
    import torch
    from filelock import FileLock
    from torch.utils import cpp_extension

    root = root or build_config.source_root()
    if root is None:
        return f'{why}, and the package carries no C++ sources to compile'
    with_cuda = build_config.with_cuda(torch, cpp_extension.CUDA_HOME)
    directory = build_directory(root, with_cuda)
    library = os.path.join(directory, LIBRARY_NAME + '.so')
    os.makedirs(directory, exist_ok=True)
    with FileLock(directory + '.lock'):
        if not os.path.exists(library):
            start = time.perf_counter()
            sys.stderr.write(f'mmseg_maskformer: compiling the C++{"/CUDA" if with_cuda else ""} '
                             f'ops on first use ({why}) into {directory} ... ')
            sys.stderr.flush()
            extra_cflags, extra_cuda_cflags = list(build_config.CXX_FLAGS), None
            if with_cuda:
                extra_cflags, extra_cuda_cflags = build_config.cuda_compile_flags(torch)
            try:
                cpp_extension.load(LIBRARY_NAME, build_config.sources(root, with_cuda),
                                   extra_cflags=extra_cflags, extra_cuda_cflags=extra_cuda_cflags,
                                   extra_ldflags=list(build_config.LINK_FLAGS),
                                   build_directory=directory, with_cuda=with_cuda,
                                   is_python_module=False, verbose=False)
            except Exception as exc:  # the compiler's message, whatever the failure
                sys.stderr.write('failed\n')
                return f'{why}; compiling it failed:\n{_last_lines(exc)}'
            sys.stderr.write(f'done in {time.perf_counter() - start:.0f} s\n')
            return None  # cpp_extension.load has loaded it
    try:
        torch.ops.load_library(library)
    except (OSError, RuntimeError) as exc:
        return f'{why}; the cached {library} could not be loaded: {exc}'
    return None
