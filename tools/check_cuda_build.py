#!/usr/bin/env python3
"""Build the CUDA kernels of csrc/ through setup.py without a GPU, and check what can run here.

A broken ``.cu`` file is otherwise only noticed on a GPU machine. This script

1. creates (once; later runs reuse it) a virtual environment with a CUDA build of torch
   (``--venv``, default ``$MMSEG_MASKFORMER_CUDA_VENV`` or ``.venv-cuda`` in the repository;
   ``torch==2.14.1``), ninja, setuptools and pytest;
2. re-runs itself inside it and builds the extension with ``setup.py build`` (the project's only
   build flags) with ``FORCE_CUDA=1`` and nvcc (``CUDA_HOME``, default ``/usr/local/cuda``) for
   ``TORCH_CUDA_ARCH_LIST`` (default ``8.0;9.0``) into ``build/cuda_check`` (incremental), and
   checks that nvcc was given every requested architecture;
3. loads the built library and checks that every ``mmseg_maskformer::`` op it registers has a CPU
   and a CUDA kernel;
4. runs ``tests/ops`` on the CPU kernels of that same library, once with the CPU capability ATen
   picks for this machine (vectorised kernels) and once with ``ATEN_CPU_CAPABILITY=default`` (the
   scalar kernels, whose per-item code the CUDA kernels share).

Prints one ``CUDA BUILD CHECK: PASSED`` / ``FAILED`` line; exits non-zero on failure.

    python tools/check_cuda_build.py [--venv DIR] [--torch VERSION] [--arch LIST] [--no-tests]
"""
import argparse
import glob
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the package, when the tool runs from a checkout without an install
from mmseg_maskformer.ops.build_config import build_with_setup_py  # noqa: E402
BUILD_DIR = os.path.join(ROOT, 'build', 'cuda_check')
NAMESPACE = 'mmseg_maskformer'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--venv', default=os.environ.get('MMSEG_MASKFORMER_CUDA_VENV',
                                                         os.path.join(ROOT, '.venv-cuda')))
    parser.add_argument('--torch', default='2.14.1', help='CUDA build of torch to compile against')
    parser.add_argument('--arch', default=os.environ.get('TORCH_CUDA_ARCH_LIST', '8.0;9.0'))
    parser.add_argument('--no-tests', action='store_true', help='build, load and check kernel '
                        'registration only')
    parser.add_argument('--verbose', action='store_true', help='show the compiler commands and '
                        'warnings')
    parser.add_argument('--inner', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args()


def ensure_venv(venv: str, torch_version: str) -> str:
    python = os.path.join(venv, 'bin', 'python')
    probe = ('import ninja, numpy, pytest, setuptools, torch; '
             f'assert torch.__version__.split("+")[0] == "{torch_version}", torch.__version__; '
             'assert torch.version.cuda, "CPU-only torch"')
    if os.path.exists(python) and subprocess.run([python, '-c', probe],
                                                 capture_output=True).returncode == 0:
        return python
    print(f'creating/updating {venv} with torch=={torch_version} (a CUDA build, several GB)',
          flush=True)
    if not os.path.exists(python):
        subprocess.run([sys.executable, '-m', 'venv', venv], check=True)
    # setuptools < 82 still ships pkg_resources; torch declares >= 77.
    subprocess.run([python, '-m', 'pip', 'install', '-q', f'torch=={torch_version}', 'ninja',
                    'numpy', 'pytest', 'setuptools>=77,<82'], check=True)
    subprocess.run([python, '-c', probe], check=True)
    return python


def registered_ops(library: str) -> list:
    """Loads ``library`` and returns the ``mmseg_maskformer::`` ops it registered."""
    import torch
    torch.ops.load_library(library)
    return sorted(name for name in torch._C._dispatch_get_all_op_names()
                  if name.startswith(f'{NAMESPACE}::'))


def ops_missing_kernels(ops: list, dispatch_keys=('CPU', 'CUDA')) -> list:
    import torch
    return [f'{op} ({key})' for op in ops for key in dispatch_keys
            if not torch._C._dispatch_has_kernel_for_dispatch_key(op, key)]


def run_op_tests(python: str, package_dir: str, env: dict) -> int:
    """``pytest tests/ops`` against the ``mmseg_maskformer`` package found in ``package_dir``.

    Run from ``BUILD_DIR``, so that the working directory that ``python -m`` puts on ``sys.path``
    holds no other copy of the package; a missing or unloadable extension fails the tests instead
    of skipping them (``MMSEG_MASKFORMER_REQUIRE_EXTENSION=1``).
    """
    env = dict(env, PYTHONPATH=package_dir, MMSEG_MASKFORMER_REQUIRE_EXTENSION='1')
    return subprocess.run([python, '-m', 'pytest', '-c', os.path.join(ROOT, 'pytest.ini'),
                           '--rootdir', ROOT, os.path.join(ROOT, 'tests', 'ops'), '-q'],
                          cwd=BUILD_DIR, env=env).returncode


def check_arch_flags(arch: str) -> None:
    """nvcc got a ``code=sm_XY`` target for every requested architecture (build.ninja)."""
    with open(os.path.join(BUILD_DIR, 'temp', 'build.ninja')) as f:
        ninja = f.read()
    for item in arch.replace(' ', ';').split(';'):
        number = item.split('+')[0].replace('.', '')
        if f'code=sm_{number}' not in ninja:
            raise RuntimeError(f'nvcc was not asked for sm_{number} (TORCH_CUDA_ARCH_LIST={arch})')


def build_and_check(arch: str, run_tests: bool, verbose: bool) -> None:
    import torch
    from torch.utils import cpp_extension

    if cpp_extension.CUDA_HOME is None:
        raise RuntimeError('no CUDA toolkit found: set CUDA_HOME (e.g. /usr/local/cuda)')
    lib_dir = os.path.join(BUILD_DIR, 'lib')
    env = dict(os.environ, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST=arch)
    env.pop('MMSEG_MASKFORMER_NO_EXTENSION', None)
    build_with_setup_py(sys.executable, env,
                        ['build', '--build-base', BUILD_DIR, '--build-lib', lib_dir,
                         '--build-temp', os.path.join(BUILD_DIR, 'temp')], verbose)
    check_arch_flags(arch)
    library, = glob.glob(os.path.join(lib_dir, NAMESPACE, '_C*.so'))
    ops = registered_ops(library)
    if not ops:
        raise RuntimeError(f'{library} registers no {NAMESPACE}:: ops')
    missing = ops_missing_kernels(ops)
    if missing:
        raise RuntimeError(f'no kernel registered for {missing}')
    print(f'built {os.path.relpath(library, ROOT)} for {arch}: {len(ops)} ops, each with CPU and '
          f'CUDA kernels', flush=True)
    if not run_tests:
        return
    for capability in (None, 'default'):
        test_env = dict(os.environ)
        if capability:
            test_env['ATEN_CPU_CAPABILITY'] = capability
        label = f'ATEN_CPU_CAPABILITY={capability or "(ATen default)"}'
        print(f'tests/ops on the CPU kernels of this build, {label}', flush=True)
        if run_op_tests(sys.executable, lib_dir, test_env) != 0:
            raise RuntimeError(f'tests/ops failed with {label}')


def main() -> int:
    args = parse_args()
    start = time.monotonic()
    try:
        if args.inner:
            build_and_check(args.arch, not args.no_tests, args.verbose)
            return 0
        os.environ.setdefault('CUDA_HOME', '/usr/local/cuda')
        python = ensure_venv(args.venv, args.torch)
        inner = [python, os.path.abspath(__file__), '--inner', '--arch', args.arch]
        result = subprocess.run(inner + (['--verbose'] if args.verbose else []) +
                                (['--no-tests'] if args.no_tests else []))
        ok = result.returncode == 0
        reason = '' if ok else f' (build/load/tests exited {result.returncode}, see above)'
    except Exception as exc:  # reported in the one status line below
        if args.inner:
            print(f'{type(exc).__name__}: {exc}', file=sys.stderr)
            return 1
        ok, reason = False, f' ({type(exc).__name__}: {exc})'
    elapsed = f'{time.monotonic() - start:.0f} s'
    if ok:
        tests = ('' if args.no_tests else ', tests/ops pass on its CPU kernels (vectorised and '
                 'ATEN_CPU_CAPABILITY=default)')
        print(f'CUDA BUILD CHECK: PASSED: setup.py built csrc/ with nvcc for TORCH_CUDA_ARCH_LIST='
              f'{args.arch} against torch {args.torch}, loaded, every op has CPU and CUDA '
              f'kernels{tests} ({elapsed})', flush=True)
        return 0
    print(f'CUDA BUILD CHECK: FAILED{reason} ({elapsed})', flush=True)
    return 1


if __name__ == '__main__':
    sys.exit(main())
