"""The pix2pix objective: conditional D, the mismatched-pair negatives, L1, and which
networks each phase updates."""

import pytest
import torch

from translate.train import losses
from translate.train.methods.pix2pix import Pix2Pix, mismatched_targets
from translate.train.loop import train_step

from conftest import tiny_config


def method_for(tmp_path, **loss):
    """A pix2pix method; DiffAugment off (a default), so that D sees what the test computes."""
    torch.manual_seed(0)
    return Pix2Pix(tiny_config(tmp_path, tmp_path / "run", loss={"diffaugment": "", **loss}))


def batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1,
            "b": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1}


def test_rolled_targets_belong_to_other_inputs():
    b = batch(4)["b"]
    wrong, keep = mismatched_targets(b, torch.arange(4))
    assert keep.all()
    for i in range(4):
        assert torch.equal(wrong[i], b[i - 1])
        assert not torch.equal(wrong[i], b[i])


def test_repeated_samples_never_mismatch_with_themselves():
    """A batch may hold one sample twice (a dataset smaller than the batch, an epoch
    boundary): each row gets the target of a different sample, or is left out."""
    b = batch(4)["b"]
    index = torch.tensor([7, 7, 3, 7])
    wrong, keep = mismatched_targets(b, index)
    assert keep.all()
    source = {0: 2, 1: 2, 2: 1, 3: 2}  # the row each one takes its target from
    for i, j in source.items():
        assert torch.equal(wrong[i], b[j]) and index[j] != index[i]
    assert mismatched_targets(b, torch.full((4,), 5)) is None  # one sample only
    previous = (batch(4, seed=1)["b"], torch.tensor([5, 1, 5, 2]))
    wrong, keep = mismatched_targets(b, torch.full((4,), 5), previous)
    assert keep.tolist() == [False, True, False, True]
    assert torch.equal(wrong[1], previous[0][1]) and torch.equal(wrong[3], previous[0][3])


def test_batch_of_one_uses_the_previous_target(tmp_path):
    m = method_for(tmp_path)
    first, second, again = batch(1, seed=1), batch(1, seed=2), batch(1, seed=3)
    first["index"], second["index"], again["index"] = (torch.tensor([i]) for i in (0, 1, 1))
    out1 = m.forward(first)
    assert out1["wrong_b"] is None  # nothing earlier to mismatch with yet
    out2 = m.forward(second)
    assert torch.equal(out2["wrong_b"], first["b"]) and torch.equal(out2["wrong_a"],
                                                                     second["a"])
    assert not torch.equal(out2["wrong_b"], second["b"])
    assert m.forward(again)["wrong_b"] is None  # the same sample twice in a row
    assert "d_mismatch" not in m.d_objective(m.forward(again))[1]


def test_training_stream_mismatches_only_other_samples(shapes32, tmp_path):
    """Through the real data stream (loader, sampler, three pairs, batch size 1 and 2): every
    mismatched target comes from another sample. Rows are matched to samples by content."""
    from torch.utils.data import DataLoader

    from translate.data.datasets import StreamSampler
    from translate.train.loop import build_dataset

    config = tiny_config(shapes32, tmp_path / "run")
    dataset = build_dataset(config)
    dataset.items = dataset.items[:3]
    for size in (1, 2):
        torch.manual_seed(0)
        m = Pix2Pix(tiny_config(shapes32, tmp_path / f"r{size}"))
        loader = DataLoader(dataset, batch_size=size, sampler=StreamSampler(3, seed=size))
        owner = {}
        checked = 0
        for step, item in zip(range(30), loader):
            for row, index in zip(item["b"], item["index"].tolist()):
                owner[row.numpy().tobytes()] = index
            out = m.forward(item)
            if out["wrong_b"] is None:
                continue
            for x, y in zip(out["wrong_a"], out["wrong_b"]):
                a_index = next(i for r, i in zip(item["a"], item["index"].tolist())
                               if torch.equal(r, x))
                assert owner[y.numpy().tobytes()] != a_index
                checked += 1
        assert checked >= 15, checked


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_mismatched_pairs_are_labelled_fake(tmp_path, mode):
    m = method_for(tmp_path, gan=mode, mismatch=0.5)
    out = m.forward(batch(3))
    total, terms = m.d_objective(out)
    assert set(terms) == {"d_real", "d_fake", "d_mismatch", "score_real", "score_fake",
                          "score_mismatch"}
    logits = m.critic(out["wrong_a"], out["wrong_b"])
    assert terms["d_mismatch"].item() == pytest.approx(
        losses.discriminator_loss(mode, logits, real=False).item(), rel=1e-5)
    # D's judgement, logged for watching: the mean probability (vanilla) or output (lsgan)
    realness = torch.sigmoid(logits).mean() if mode == "vanilla" else logits.mean()
    assert terms["score_mismatch"].item() == pytest.approx(realness.item(), rel=1e-5)
    if mode == "lsgan":  # fake label 0: mean(D^2), unlike the real label's mean((D - 1)^2)
        assert terms["d_mismatch"].item() == pytest.approx((logits ** 2).mean().item(),
                                                           rel=1e-5)
    expected = 0.5 * (terms["d_real"] + (terms["d_fake"] + 0.5 * terms["d_mismatch"]) / 1.5)
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)


def test_mismatch_zero_is_the_reference_objective(tmp_path):
    m = method_for(tmp_path, mismatch=0.0)
    total, terms = m.d_objective(m.forward(batch(2)))
    assert "d_mismatch" not in terms
    assert total.item() == pytest.approx(0.5 * (terms["d_real"] + terms["d_fake"]).item(),
                                         rel=1e-6)


def test_generator_objective(tmp_path):
    m = method_for(tmp_path, l1=7.0)
    out = m.forward(batch(2))
    total, terms = m.g_objective(out)
    assert terms["g_l1"].item() == pytest.approx(
        (out["fake_b"] - out["real_b"]).abs().mean().item(), rel=1e-5)
    assert total.item() == pytest.approx((terms["g_gan"] + 7 * terms["g_l1"]).item(), rel=1e-5)


def test_wgan_gp_applies_the_penalty(tmp_path):
    m = method_for(tmp_path, gan="wgan-gp", gp=10.0)
    total, terms = m.d_objective(m.forward(batch(2)))
    assert terms["d_gp"].item() > 0
    neg = (terms["d_fake"] + terms["d_mismatch"]) / 2
    assert total.item() == pytest.approx(
        (0.5 * (terms["d_real"] + neg) + 10 * terms["d_gp"]).item(), rel=1e-4)


def params(net):
    return [p.detach().clone() for p in net.parameters()]


def changed(before, net):
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("phase", ["d", "g"])
def test_each_phase_updates_only_its_networks(tmp_path, phase):
    m = method_for(tmp_path)
    m.phases = (phase,)
    g0, d0 = params(m.nets["g"]), params(m.nets["d"])
    optimizers = {k: torch.optim.Adam(m.parameters_of(k), lr=1e-3) for k in m.groups}
    train_step(m, optimizers, batch(2))
    assert changed(g0, m.nets["g"]) == (phase == "g")
    assert changed(d0, m.nets["d"]) == (phase == "d")


def test_direction_b2a_swaps_input_and_target(tmp_path):
    torch.manual_seed(0)
    m = Pix2Pix(tiny_config(tmp_path, tmp_path / "r", data={"direction": "b2a"}))
    data = batch(2)
    out = m.forward(data)
    assert torch.equal(out["real_a"], data["b"]) and torch.equal(out["real_b"], data["a"])
