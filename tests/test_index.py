import numpy as np
import pytest

from optiroute import ArtifactNotFoundError, CorruptArtifactError
from optiroute.quality.index import OutcomeIndex


def _unit(rng, n, d=16):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def index():
    rng = np.random.default_rng(0)
    emb = _unit(rng, 200)
    # model "a" solves prompts whose first coordinate is positive, "b" the others; "c" unevaluated on half.
    scores = np.stack([(emb[:, 0] > 0), (emb[:, 0] <= 0), np.ones(200)], axis=1).astype(np.float32)
    scores[100:, 2] = np.nan
    return OutcomeIndex(emb, [f"p{i}" for i in range(200)], ["t"] * 200, ["a", "b", "c"], scores, n_trees=8), emb


def test_annoy_and_exact_search_agree_on_the_nearest_neighbour(index):
    idx, emb = index
    for i in range(0, 200, 37):
        approx = idx.search(emb[i], 5)
        exact = idx.search_batch(emb[i : i + 1], 5)
        assert approx.ids[0, 0] == exact.ids[0, 0] == i
        assert approx.sims[0, 0] == pytest.approx(1.0, abs=0.02)
    batch = idx.search_batch(emb[:10], 5)
    assert batch.ids.shape == (10, 5) and (np.diff(batch.sims, axis=1) <= 1e-6).all()


def test_knn_quality_follows_the_neighbours(index):
    idx, emb = index
    knn = idx.search_batch(emb, 10)
    q, support = idx.knn_quality(knn, [0, 1, None])
    pos = emb[:, 0] > 0.3
    assert q[pos, 0].mean() > 0.8 and q[pos, 1].mean() < 0.2
    assert np.isnan(q[:, 2]).all() and (support[:, 2] == 0).all()
    assert (support[:, 0] > 0).all()


def test_missing_outcomes_are_unknown_not_wrong(index):
    idx, emb = index
    knn = idx.search_batch(emb, 20)
    q, _ = idx.knn_quality(knn, [2])
    assert np.nanmin(q) == pytest.approx(1.0)  # model c is right wherever it was evaluated


def test_save_load_round_trip_and_corruption(index, tmp_path):
    idx, emb = index
    idx.save(tmp_path)
    back = OutcomeIndex.load(tmp_path)
    a, b = idx.search(emb[3], 5), back.search(emb[3], 5)
    assert (a.ids == b.ids).all()
    np.testing.assert_allclose(back.scores, idx.scores, atol=1e-3)
    (tmp_path / "index.npz").write_bytes(b"not a zip")
    with pytest.raises(CorruptArtifactError, match="index.npz"):
        OutcomeIndex.load(tmp_path)
    with pytest.raises(ArtifactNotFoundError):
        OutcomeIndex.load(tmp_path / "missing")


def test_estimated_cells_survive_save_load_and_older_files_read_as_measured(index, tmp_path):
    idx, _ = index
    mask = np.zeros(200, dtype=bool)
    mask[::3] = True
    idx.add_model("d", np.full(200, 0.5, dtype=np.float32), estimated=mask)
    assert idx.estimated.shape == (200, 4) and not idx.estimated[:, :3].any()
    idx.save(tmp_path / "new", with_ann=False)
    np.testing.assert_array_equal(OutcomeIndex.load(tmp_path / "new").estimated, idx.estimated)
    # An index.npz written before the mark existed: every stored score counts as measured.
    with np.load(tmp_path / "new" / "index.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "estimated"}
    (tmp_path / "old").mkdir()
    np.savez_compressed(tmp_path / "old" / "index.npz", **arrays)
    old = OutcomeIndex.load(tmp_path / "old")
    assert old.estimated.shape == (200, 4) and not old.estimated.any()


def test_shape_mismatch_is_reported():
    with pytest.raises(CorruptArtifactError, match="shape"):
        OutcomeIndex(np.zeros((3, 4)), ["a", "b", "c"], ["", "", ""], ["m"], np.zeros((2, 1)))
