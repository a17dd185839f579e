"""Build and install mmseg-maskformer.

``pip install -e . --no-build-isolation`` builds the C++ ops in ``csrc/`` (and the CUDA ones
when a CUDA toolkit and a CUDA build of torch are present) into ``mmseg_maskformer._C``.
Set ``MMSEG_MASKFORMER_NO_EXTENSION=1`` to skip the extension: every op then runs its pure-PyTorch
reference. ``FORCE_CUDA=1`` builds the CUDA kernels without a visible GPU (cross-compiling), for
``TORCH_CUDA_ARCH_LIST`` (default without a GPU: :data:`DEFAULT_CUDA_ARCH_LIST`; with one, torch
picks the visible GPUs' architectures).

These are the only build flags of the project: ``tools/check_cuda_build.py`` and
``tools/gpu_check.py`` build through this file.
"""
import glob
import os

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
# Compute capabilities compiled when no GPU is visible: sm_80 machine code also runs on 8.6 / 8.9
# (same major version); the 9.0 PTX is JIT-compiled by the driver on newer GPUs.
DEFAULT_CUDA_ARCH_LIST = '8.0;9.0+PTX'


def _cuda_library_include_dirs(torch):
    """Include folders of the CUDA library wheels that a CUDA build of torch depends on.

    ``ATen/cuda/CUDAContext.h`` includes cuSPARSE, cuBLAS and cuSOLVER headers, which a bare CUDA
    toolkit (compiler and runtime only) lacks and pip's ``nvidia-*`` wheels bring: in one folder
    ``nvidia/cu<major>/include`` from CUDA 13 on, in one folder per library
    (``nvidia/cusparse/include``...) for CUDA 12.
    """
    nvidia = os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), 'nvidia')
    merged = os.path.join(nvidia, f'cu{torch.version.cuda.split(".")[0]}', 'include')
    if os.path.isdir(merged):
        return [merged]
    return sorted(glob.glob(os.path.join(nvidia, '*', 'include')))


def _extensions():
    if os.environ.get('MMSEG_MASKFORMER_NO_EXTENSION', '0') == '1':
        return [], {}
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    def sources(pattern):
        return sorted(os.path.relpath(path, ROOT)
                      for path in glob.glob(os.path.join(ROOT, 'csrc', pattern), recursive=True))

    cpp_sources = sources('**/*.cpp')
    if not cpp_sources:
        return [], {}
    gpu_visible = torch.cuda.is_available()
    with_cuda = (torch.version.cuda is not None and CUDA_HOME is not None and
                 (gpu_visible or os.environ.get('FORCE_CUDA', '0') == '1'))
    # torch >= 2.14's headers need C++20; the sources are C++17 and C++20 clean. Given explicitly
    # (BuildExtension adds its own default only when no -std is present) so that g++ and nvcc
    # always agree, whatever torch version builds.
    cxx_flags = ['-O3', '-std=c++20', '-fopenmp']
    extra_compile_args = {'cxx': cxx_flags}
    include_dirs = []
    if with_cuda:
        if not gpu_visible and not os.environ.get('TORCH_CUDA_ARCH_LIST'):
            # Without a GPU torch has no architecture to pick (torch 2.14 fails with IndexError).
            os.environ['TORCH_CUDA_ARCH_LIST'] = DEFAULT_CUDA_ARCH_LIST
        # -isystem after torch's -I paths: the toolkit's own headers win, the wheels only fill in.
        system_includes = [flag for path in _cuda_library_include_dirs(torch)
                           for flag in ('-isystem', path)]
        extra_compile_args = {'cxx': cxx_flags + ['-DWITH_CUDA'] + system_includes,
                              'nvcc': ['-O3', '-std=c++20', '-DWITH_CUDA'] + system_includes}
        ext = CUDAExtension('mmseg_maskformer._C', cpp_sources + sources('**/*.cu'),
                            extra_compile_args=extra_compile_args,
                            extra_link_args=['-fopenmp'])
    else:
        ext = CppExtension('mmseg_maskformer._C', cpp_sources,
                           extra_compile_args=extra_compile_args, extra_link_args=['-fopenmp'])
    return [ext], {'build_ext': BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()

setup(
    name='mmseg-maskformer',
    version='0.1.0',
    description='MaskFormer for MMSegmentation 1.x with fused C++/CUDA mask-loss ops',
    long_description=open(os.path.join(ROOT, 'README.md')).read()
    if os.path.exists(os.path.join(ROOT, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmseg_maskformer', 'mmseg_maskformer.*']),
    python_requires='>=3.9',
    install_requires=['torch', 'scipy', 'numpy'],
    extras_require={
        'mmseg': ['mmengine==0.10.7', 'mmcv==2.1.0', 'mmsegmentation==1.2.2', 'mmdet==3.3.0'],
        'tests': ['pytest', 'transformers', 'onnx', 'onnxruntime'],
        'onnx': ['onnx', 'onnxruntime'],
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
