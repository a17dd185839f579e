"""MaskFormer as an MMSegmentation 1.x extension.

Layers, each depending only on those above in this list:
``ops`` (torch) -> ``core`` (torch + scipy) -> ``models``/``datasets``/``evaluation``
(MMEngine registrations). Importing the package itself pulls in torch only; the MMSegmentation
integration registers when ``mmseg_maskformer.models`` etc. are imported, which configs do through
``custom_imports``.
"""
__version__ = '0.1.0'


def __getattr__(name):
    # Lazy, so that ``import mmseg_maskformer.ops`` needs torch alone (the GPU machine has no scipy
    # guarantee and no OpenMMLab packages).
    if name in ('panoptic_inference', 'semantic_inference'):
        from . import core
        return getattr(core, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
