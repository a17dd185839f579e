"""Build and install mmseg-maskformer.

``pip install -e . --no-build-isolation`` builds the C++ ops in ``csrc/`` (and the CUDA ones
when a CUDA toolkit and a CUDA build of torch are present) into ``mmseg_maskformer._C``.
Set ``MMSEG_MASKFORMER_NO_EXTENSION=1`` to skip the extension: every op then runs its pure-PyTorch
reference. ``FORCE_CUDA=1`` builds the CUDA kernels without a visible GPU (cross-compiling).
"""
import glob
import os

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _extensions():
    if os.environ.get('MMSEG_MASKFORMER_NO_EXTENSION', '0') == '1':
        return [], {}
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    def sources(*patterns):
        return sorted(
            os.path.relpath(p, ROOT) for pat in patterns
            for p in glob.glob(os.path.join(ROOT, 'csrc', pat), recursive=True))

    cpp_sources = sources('*.cpp', 'ops/*.cpp', 'ops/cpu/*.cpp', 'ops/autograd/*.cpp')
    if not cpp_sources:
        return [], {}
    with_cuda = (torch.version.cuda is not None and CUDA_HOME is not None and
                 (torch.cuda.is_available() or os.environ.get('FORCE_CUDA', '0') == '1'))
    cxx_flags = ['-O3', '-fopenmp']
    extra = dict(extra_compile_args={'cxx': cxx_flags}, extra_link_args=['-fopenmp'])
    if with_cuda:
        cuda_include = os.path.join(os.path.dirname(torch.__file__), '..', 'nvidia', 'cu13', 'include')
        extra['extra_compile_args']['nvcc'] = ['-O3', '-DWITH_CUDA']
        extra['extra_compile_args']['cxx'] = cxx_flags + ['-DWITH_CUDA']
        include_dirs = [os.path.abspath(cuda_include)] if os.path.isdir(cuda_include) else []
        ext = CUDAExtension('mmseg_maskformer._C',
                            cpp_sources + sources('ops/cuda/*.cu'),
                            include_dirs=include_dirs, **extra)
    else:
        ext = CppExtension('mmseg_maskformer._C', cpp_sources, **extra)
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
        'tests': ['pytest', 'transformers'],
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
