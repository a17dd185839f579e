"""Build and install mmseg-maskformer.

Every route installs the Python package with its C++/CUDA sources, configs, tools and model index
(in ``mmseg_maskformer/.mim``, as OpenMMLab packages carry theirs for ``mim``):

- ``pip install .``, ``pip install -e .``, ``mim install -e .`` or an sdist: pip builds in an
  isolated environment without torch, so nothing is compiled here; the ops are compiled on first
  use into a per-user cache (:mod:`mmseg_maskformer.ops._jit`).
- ``pip install -e . --no-build-isolation`` with torch installed (what ``make setup`` does) also
  builds the ops ahead of time into ``mmseg_maskformer._C`` (CUDA kernels too when a CUDA toolkit
  and a CUDA build of torch are present), which is used whenever it loads.

``MMSEG_MASKFORMER_NO_EXTENSION=1`` skips the ahead-of-time build (and, at run time, both builds:
every op then runs its pure-PyTorch reference). ``FORCE_CUDA=1`` builds the CUDA kernels without a
visible GPU (cross-compiling), for ``TORCH_CUDA_ARCH_LIST`` (default without a GPU:
``build_config.DEFAULT_CUDA_ARCH_LIST``; with one, torch picks the visible GPUs' architectures).
The flags are those of ``mmseg_maskformer/ops/build_config.py``, the project's only build flags,
shared with the first-use build; ``tools/check_cuda_build.py`` and ``tools/gpu_check.py`` build
through this file.
"""
import importlib.util
import os
import shutil
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
# Copied (or, for editable installs, linked) into mmseg_maskformer/.mim: what mim and the
# first-use build find in an installed package.
MIM_FILES = ('configs', 'tools', 'model-index.yml', 'csrc')


def _build_config():
    """mmseg_maskformer/ops/build_config.py, loaded by path: importing the package would import
    torch, which an isolated build environment does not have."""
    path = os.path.join(ROOT, 'mmseg_maskformer', 'ops', 'build_config.py')
    spec = importlib.util.spec_from_file_location('mmseg_maskformer_build_config', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_mim_extension():
    """Puts :data:`MIM_FILES` into ``mmseg_maskformer/.mim``: symbolic links for an editable
    install, copies when building a wheel or an sdist (mmsegmentation's setup.py does the same).
    Other commands (``setup.py build`` / ``build_ext`` of the CUDA checks) leave it alone, so that a
    checkout's links are not replaced by copies that go stale."""
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = os.path.join(ROOT, 'mmseg_maskformer', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        source, target = os.path.join(ROOT, name), os.path.join(mim_path, name)
        if not os.path.exists(source):  # an sdist being built again already has the copies
            continue
        if os.path.islink(target) or os.path.isfile(target):
            os.remove(target)
        elif os.path.isdir(target):
            shutil.rmtree(target)
        if mode == 'symlink':
            os.symlink(os.path.relpath(source, mim_path), target)
        elif os.path.isdir(source):
            shutil.copytree(source, target, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(source, target)


def _extensions():
    """The ahead-of-time extension when torch is importable here, else none."""
    if os.environ.get('MMSEG_MASKFORMER_NO_EXTENSION', '0') == '1':
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        print('mmseg_maskformer: torch is not importable in this build environment; the C++ ops '
              'will be compiled on first use', file=sys.stderr)
        return [], {}
    config = _build_config()
    csrc = os.path.join(ROOT, 'csrc')
    if not config.sources(csrc, with_cuda=False):
        return [], {}
    cuda = config.with_cuda(torch, CUDA_HOME)
    sources = [os.path.relpath(path, ROOT) for path in config.sources(csrc, with_cuda=cuda)]
    if cuda:
        cxx_flags, nvcc_flags = config.cuda_compile_flags(torch)
        ext = CUDAExtension('mmseg_maskformer._C', sources,
                            extra_compile_args={'cxx': cxx_flags, 'nvcc': nvcc_flags},
                            extra_link_args=config.LINK_FLAGS)
    else:
        ext = CppExtension('mmseg_maskformer._C', sources,
                           extra_compile_args={'cxx': list(config.CXX_FLAGS)},
                           extra_link_args=config.LINK_FLAGS)
    return [ext], {'build_ext': BuildExtension.with_options(use_ninja=True)}


add_mim_extension()
ext_modules, cmdclass = _extensions()

setup(
    name='mmseg-maskformer',
    version='0.1.0',
    description='MaskFormer for MMSegmentation 1.x with fused C++/CUDA mask-loss ops',
    long_description=open(os.path.join(ROOT, 'README.md')).read()
    if os.path.exists(os.path.join(ROOT, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmseg_maskformer', 'mmseg_maskformer.*']),
    include_package_data=True,
    python_requires='>=3.9',
    install_requires=['torch', 'scipy', 'numpy', 'ninja', 'filelock'],
    extras_require={
        'mmseg': ['mmengine==0.10.7', 'mmcv==2.1.0', 'mmsegmentation==1.2.2', 'mmdet==3.3.0'],
        'tests': ['pytest', 'transformers', 'onnx', 'onnxruntime'],
        'onnx': ['onnx', 'onnxruntime'],
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
