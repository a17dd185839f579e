// Operator schemas of the mmseg_maskformer library. Kernels register per device in
// ops/cpu and ops/cuda; fake kernels and autograd live in the Python module named below.
#include <Python.h>
#include <torch/library.h>

// Makes the library importable as the extension module mmseg_maskformer._C as well as loadable
// with torch.ops.load_library; the module itself exposes nothing.
PyMODINIT_FUNC PyInit__C(void) {
  static PyModuleDef module = {
      PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr, nullptr, nullptr, nullptr, nullptr};
  return PyModule_Create(&module);
}

TORCH_LIBRARY(mmseg_maskformer, m) {
  m.set_python_module("mmseg_maskformer.ops._meta");
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  m.def(
      "sigmoid_focal_dice_loss(Tensor mask_logits, Tensor targets, float alpha, float gamma, "
      "float eps, Tensor? valid=None) -> (Tensor focal, Tensor dice, Tensor sums)",
      tags);
  m.def(
      "sigmoid_focal_dice_loss_backward(Tensor grad_focal, Tensor grad_dice, Tensor mask_logits, "
      "Tensor targets, Tensor sums, float alpha, float gamma, float eps, Tensor? valid=None) -> "
      "Tensor",
      tags);
  m.def(
      "pairwise_mask_costs(Tensor mask_logits, Tensor targets, float alpha, float gamma, "
      "float eps, Tensor? valid=None) -> (Tensor focal_cost, Tensor dice_cost)",
      tags);
  m.def("point_sample(Tensor inputs, Tensor points, bool align_corners) -> Tensor", tags);
  m.def(
      "point_sample_backward(Tensor grad_output, Tensor points, SymInt height, SymInt width, "
      "bool align_corners) -> Tensor",
      tags);
  m.def(
      "select_uncertain_points(Tensor candidate_logits, Tensor candidates, int num_uncertain) -> "
      "Tensor",
      tags);
  m.def(
      "sample_uncertain_points(Tensor mask_logits, Tensor seed, int num_points, "
      "int num_candidates, int num_uncertain) -> Tensor",
      tags);
  m.def(
      "semantic_scores(Tensor cls_logits, Tensor mask_logits, SymInt height, SymInt width) -> "
      "Tensor",
      tags);
  m.def(
      "semantic_labels(Tensor cls_logits, Tensor mask_logits, int[] input_size, int[] crop, "
      "int[] output_size, bool flip_horizontal, bool flip_vertical, bool align_corners) -> "
      "(Tensor labels, Tensor scores)",
      tags);
  m.def(
      "panoptic_assignment(Tensor mask_logits, Tensor scores, int[] input_size, int[] crop, "
      "int[] output_size, bool flip_horizontal, bool flip_vertical, bool align_corners) -> "
      "(Tensor owner, Tensor won, Tensor area)",
      tags);
}
