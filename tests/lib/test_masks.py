"""Masks: ratio handling, layerwise and global selection, distances, JSON, bad input."""
import math

import numpy as np
import pytest
import torch

import ebcore as eb
from ebcore.masks import check_ratio
from ebcore.scores import LayerScores, Scores


def scores_of(*layers):
    return Scores([LayerScores(torch.tensor(h, dtype=torch.float), torch.tensor(c, dtype=torch.float))
                   for h, c in layers], criterion="test", head_dims=[4] * len(layers))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "a lot", None])
def test_ratio_outside_unit_interval_is_a_clear_error(bad):
    with pytest.raises(eb.InvalidRatioError, match=r"\[0, 1\)"):
        check_ratio(bad)


def test_layerwise_prunes_lowest_scores_per_layer():
    s = scores_of(([3, 1, 2], [5, 4, 3, 2, 1, 0, 9, 8, 7, 6]), ([1, 2, 3], [0] * 10))
    m = eb.mask_from_scores(s, 0.3)
    assert m.layers[0].heads == (0, 2)  # head 1 is the weakest
    assert m.layers[0].channels == (0, 1, 2, 6, 7, 8, 9)  # 3 weakest channels (3, 4, 5) go
    assert m.layers[1].heads == (1, 2)
    assert m.layers[1].channels == (0, 1, 2, 3, 4, 5, 6), "ties keep the lower indices (deterministic)"
    assert m.kept_structure == [(2, 7), (2, 7)]


def test_separate_head_and_ffn_ratios():
    s = scores_of(([1, 2, 3, 4], list(range(10))))
    m = eb.mask_from_scores(s, head_ratio=0.5, ffn_ratio=0.1)
    assert m.kept_structure == [(2, 9)]
    assert m.meta["head_ratio"] == 0.5 and m.meta["ffn_ratio"] == 0.1


def test_ratio_zero_keeps_everything_and_layers_are_never_emptied():
    s = scores_of(([1, 2, 3], [1, 2]), ([1, 2, 3], [2, 1]))
    assert eb.mask_from_scores(s, 0.0).kept_structure == [(3, 2), (3, 2)]
    assert eb.mask_from_scores(s, 0.99).kept_structure == [(1, 1), (1, 1)]
    assert eb.mask_from_scores(s, 0.99, scope="global").kept_structure == [(1, 1), (1, 1)]


def test_global_normalizes_per_layer_and_keeps_each_layers_best():
    # Layer 1's raw scores are 1000x layer 0's; normalized ranking must still prune inside layer 1.
    s = scores_of(([1, 2, 3, 4], [1, 2, 3, 4]), ([1000, 2000, 3000, 4000], [1000, 2000, 3000, 4000]))
    m = eb.mask_from_scores(s, 0.5, scope="global")
    assert m.kept_structure == [(2, 2), (2, 2)]
    # A layer whose every unit scores lowest globally keeps its best unit; the count stays exact.
    s = scores_of(([10, 10, 10], [10, 10, 10]), ([1, 1, 50], [1, 1, 50]))
    m = eb.mask_from_scores(s, 0.5, scope="global")
    assert sum(h for h, _ in m.kept_structure) == 3 and all(h >= 1 for h, _ in m.kept_structure)
    assert m.layers[1].heads == (2,)


def test_unknown_scope_and_missing_ratio():
    s = scores_of(([1, 2], [1, 2]))
    with pytest.raises(ValueError, match="scope"):
        eb.mask_from_scores(s, 0.3, scope="everywhere")
    with pytest.raises(eb.InvalidRatioError, match="give `ratio`"):
        eb.mask_from_scores(s, head_ratio=0.3)


def test_distance_is_normalized_hamming():
    a = eb.LayerMask((0, 1), (0, 1, 2, 3), num_heads=4, num_channels=8, head_dim=2)
    b = eb.LayerMask((0, 2), (0, 1, 2, 3), num_heads=4, num_channels=8, head_dim=2)
    d = eb.mask_distance(eb.Mask((a,)), eb.Mask((b,)))
    assert d["heads"] == 2 / 4
    assert d["channels"] == 0
    assert d["combined"] == (2 * 2) / (4 * 2 + 8)  # heads weigh head_dim channels each
    assert eb.mask_distance(eb.Mask((a,)), eb.Mask((a,))) == {"heads": 0, "channels": 0, "combined": 0}
    comp = eb.LayerMask((2, 3), (4, 5, 6, 7), 4, 8, 2)
    assert eb.mask_distance(eb.Mask((a,)), eb.Mask((comp,)))["combined"] == 1.0


def test_pairwise_matrix_is_symmetric_with_zero_diagonal():
    masks = [eb.random_mask([(4, 16, 8), (6, 16, 4)], 0.5, seed=i) for i in range(5)]
    m = eb.pairwise_distances(masks)
    assert m.shape == (5, 5)
    assert np.allclose(m, m.T) and np.all(np.diag(m) == 0)
    assert m[0, 1] == eb.mask_distance(masks[0], masks[1])["combined"] > 0


def test_distance_between_different_models_is_an_error():
    a = eb.Mask.full([(4, 8)])
    b = eb.Mask.full([(4, 9)])
    with pytest.raises(eb.MaskMismatchError, match="different models"):
        eb.mask_distance(a, b)


def test_json_round_trip_and_hash():
    m = eb.random_mask([(3, 10), (6, 12)], 0.3, seed=4, head_dims=[32, 16])
    back = eb.Mask.from_json(m.to_json())
    assert back == m and back.hash() == m.hash() and back.meta == m.meta
    assert eb.random_mask([(3, 10), (6, 12)], 0.3, seed=5, head_dims=[32, 16]).hash() != m.hash()
    with pytest.raises(eb.MaskMismatchError, match="not an ebcore mask"):
        eb.Mask.from_dict({"layers": []})


def test_sparsity_summary():
    m = eb.Mask((eb.LayerMask((0,), (0, 1), 2, 4, head_dim=4),))
    s = m.sparsity()
    assert s["heads"] == 0.5 and s["channels"] == 0.5
    assert math.isclose(s["combined"], 1 - (4 + 2) / (8 + 4))


def test_bad_layer_masks():
    with pytest.raises(eb.MaskMismatchError, match="out of range"):
        eb.LayerMask((0, 5), (0,), num_heads=4, num_channels=2)
    with pytest.raises(eb.MaskMismatchError, match="twice"):
        eb.LayerMask((1, 1), (0,), num_heads=4, num_channels=2)
    with pytest.raises(eb.InvalidRatioError, match="empties layer 0"):
        eb.Mask((eb.LayerMask((0,), (), 4, 2),)).check_not_empty()


def test_random_mask_is_seeded():
    a = eb.random_mask([(6, 40, 8)], 0.3, seed=1)
    assert a == eb.random_mask([(6, 40, 8)], 0.3, seed=1)
    assert a != eb.random_mask([(6, 40, 8)], 0.3, seed=2)
    assert a.kept_structure == [(4, 28)]
