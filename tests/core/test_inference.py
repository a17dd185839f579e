import torch

from mmseg_maskformer.core import semantic_inference


def test_semantic_inference_hand_case():
    # Two queries, two classes (+ ∅), one pixel: scores are Σ_q p_q(c) σ(m_q).
    cls_logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]]))
    mask_logits = torch.logit(torch.tensor([0.9, 0.3])).view(2, 1, 1)
    scores = semantic_inference(cls_logits, mask_logits)
    expected = torch.tensor([0.7 * 0.9 + 0.1 * 0.3, 0.2 * 0.9 + 0.5 * 0.3]).view(2, 1, 1)
    torch.testing.assert_close(scores, expected)


def test_semantic_inference_batched_matches_loop():
    cls_logits = torch.randn(2, 5, 4)
    mask_logits = torch.randn(2, 5, 6, 7)
    scores = semantic_inference(cls_logits, mask_logits)
    assert scores.shape == (2, 3, 6, 7)
    for b in range(2):
        probs = cls_logits[b].softmax(-1)[:, :-1]
        loop = sum(probs[q][:, None, None] * mask_logits[b, q].sigmoid() for q in range(5))
        torch.testing.assert_close(scores[b], loop)
