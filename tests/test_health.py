"""GAN health monitor (translate/train/health.py): each event fires on what it names, once,
and stays silent on healthy training; a provoked collapse is named within a few log steps
and train.on_collapse=stop leaves a resumable run folder."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import run_cli, tiny_config

from translate.images import save_image
from translate.train.health import (COLLAPSE_STEPS, D_WINS_STEPS, STALLED_EVALS,
                                    HealthMonitor, diversity)
from translate.train.loop import TrainingCollapsed, train


def test_diversity_is_the_mean_pairwise_l1_distance():
    same = torch.zeros(3, 3, 8, 8)
    assert diversity(same) == 0.0
    two = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])
    assert diversity(two) == pytest.approx(1.0)
    three = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2), torch.ones(1, 2, 2)])
    assert diversity(three) == pytest.approx(2 / 3)


def test_collapse_after_warm_up_and_some_log_steps_in_a_row_once():
    monitor = HealthMonitor("vanilla", iterations=1000)
    assert monitor.observe(90, {}, {"a2b": 0.01}) == []  # warm-up: fresh nets are flat
    low = {"a2b": 0.02}
    events = [monitor.observe(step, {}, low) for step in (100, 110, 120)]
    assert events[0] == events[1] == [] and len(events[2]) == 1
    event = events[2][0]
    assert event.name == "collapse" and event.step == 120
    assert event.figures == {"direction": "a2b", "diversity_ratio": 0.02, "since_step": 100}
    assert "near-identical" in event.message and "lower learning rate" in event.advice
    assert monitor.observe(130, {}, low) == []  # said once
    healthy = HealthMonitor("vanilla", iterations=1000)
    for step in range(100, 200, 10):  # one low reading among healthy ones: nothing
        ratio = 0.05 if step == 150 else 0.8
        assert healthy.observe(step, {}, {"a2b": 0.8, "b2a": ratio}) == []


def _d(real, fake, adversarial):
    return {"score_real": real, "score_fake": fake, "g_gan": adversarial}


def test_d_wins_when_d_separates_and_g_loss_climbs():
    monitor = HealthMonitor("vanilla", iterations=1000)
    steps = [monitor.observe(10 * i, _d(0.97, 0.03, 2.0 + i), {}) for i in range(D_WINS_STEPS)]
    assert all(e == [] for e in steps[:-1])
    (event,) = steps[-1]
    assert event.name == "d_wins" and event.figures["score_real"] == 0.97
    flat = HealthMonitor("lsgan", iterations=1000)  # separating, but G holds its own
    assert not any(flat.observe(10 * i, _d(0.95, 0.05, 2.0), {}) for i in range(10))
    balanced = HealthMonitor("vanilla", iterations=1000)
    assert not any(balanced.observe(10 * i, _d(0.6, 0.4, 1.0 + i), {}) for i in range(10))
    hinge = HealthMonitor("hinge", iterations=1000)  # no fixed scale: not judged
    assert not any(hinge.observe(10 * i, _d(5.0, -5.0, 1.0 + i), {}) for i in range(10))


def test_dead_when_the_generators_gradient_stays_zero():
    """The metrics of a run whose generator died (gradient norm 0 from step 1000 on): named
    at the second zero log step, once; an alarm train.on_collapse=stop acts on; a healthy
    gradient, or a single zero, says nothing."""
    from translate.train.health import DEAD_STEPS
    monitor = HealthMonitor("vanilla", iterations=8000, lr=2e-4)
    assert monitor.observe(900, {"grad_norm_g": 358.8}, {}) == []
    events = [monitor.observe(step, {"grad_norm_g": 0.0}, {}) for step in (1000, 1100, 1200)]
    assert events[0] == [] and events[2] == [] and DEAD_STEPS == 2
    (event,) = events[1]
    assert event.name == "dead" and event.step == 1100 and "no longer learns" in event.message
    assert "train.lr=0.0001" in event.advice and monitor.alarm.name == "dead"
    state = monitor.state()
    resumed = HealthMonitor("vanilla", iterations=8000)
    resumed.load(state)
    assert resumed.zero_gradient == 3
    assert resumed.observe(1300, {"grad_norm_g": 0.0}, {}) == []  # said before
    assert resumed.alarm is not None and resumed.alarm.name == "dead"
    healthy = HealthMonitor("vanilla", iterations=8000)
    for step, norm in ((100, 5.0), (200, 0.0), (300, 4.0), (400, 3.0)):
        assert healthy.observe(step, {"grad_norm_g": norm}, {}) == []
    assert healthy.alarm is None


def test_stalled_when_eval_and_loss_stop_moving():
    monitor = HealthMonitor("vanilla", iterations=10000)
    events = []
    for i, psnr in enumerate([20.0, 22.0, 23.0, 22.9, 22.8, 23.0, 22.95]):
        monitor.observe(100 * i, {"g_total": 10.0}, {})
        events += monitor.observe_eval(100 * i, {"eval_psnr": psnr}, "psnr")
    assert [e.name for e in events] == ["stalled"]
    assert events[0].step == 100 * (2 + STALLED_EVALS)
    improving = HealthMonitor("vanilla", iterations=10000)
    for i in range(10):
        improving.observe(100 * i, {"g_total": 10.0}, {})
        assert improving.observe_eval(100 * i, {"eval_psnr": 20.0 + i}, "psnr") == []
    fid = HealthMonitor("vanilla", iterations=10000)  # lower is better: falling FID is fine
    for i in range(10):
        fid.observe(100 * i, {"g_total": 10.0}, {})
        assert fid.observe_eval(100 * i, {"eval_fid": 100.0 - i}, "fid") == []


def test_state_round_trip_judges_as_an_unbroken_run():
    a = HealthMonitor("vanilla", iterations=1000)
    for step in (100, 110):
        a.observe(step, {}, {"a2b": 0.01})
    b = HealthMonitor("vanilla", iterations=1000)
    b.load(json.loads(json.dumps(a.state())))  # plain data, as checkpoints hold it
    assert b.observe(120, {}, {"a2b": 0.01})[0].figures["since_step"] == 100
    fresh = HealthMonitor("vanilla", iterations=1000)
    fresh.load({})  # a checkpoint from before the monitor
    assert fresh.observe(120, {}, {"a2b": 0.01}) == []


@pytest.fixture(scope="module")
def blank_inputs(tmp_path_factory):
    """Paired data whose inputs are all the same gray picture while the targets differ: a
    generator can only ignore its input, and its outputs collapse to one picture."""
    root = tmp_path_factory.mktemp("blank")
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("test", 4)):
        for i in range(n):
            target = np.zeros((32, 32, 3), np.uint8)
            target[rng.integers(0, 16):, :, rng.integers(0, 3)] = 255
            save_image(np.full((32, 32, 3), 128, np.uint8), root / split / "A" / f"{i}.png")
            save_image(target, root / split / "B" / f"{i}.png")
    return root


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_provoked_collapse_is_named_within_a_few_log_steps(blank_inputs, tmp_path,
                                                            one_thread, capsys):
    config = tiny_config(blank_inputs, tmp_path / "run", generator={"ngf": 8, "depth": 5},
                         discriminator={"ndf": 8},
                         train={"iterations": 100, "batch_size": 4, "log_every": 10,
                                "samples": 4, "sample_every": 0, "checkpoint_every": 100})
    train(config, progress=False)
    events = [r for r in _rows(tmp_path / "run") if "event" in r]
    assert [e["event"] for e in events] == ["collapse"], events
    # judged from step 50 (WARM_UP_MIN), named at the third low reading in a row
    assert events[0]["step"] == 50 + 10 * (COLLAPSE_STEPS - 1) == 70
    assert events[0]["diversity_ratio"] < 0.1 and events[0]["since_step"] == 50
    assert "warning: collapse at step 70" in capsys.readouterr().err


def test_on_collapse_stop_keeps_the_last_checkpoint_and_resumes(blank_inputs, tmp_path,
                                                                one_thread):
    run = tmp_path / "run"
    config = tiny_config(blank_inputs, run, generator={"ngf": 8, "depth": 5},
                         discriminator={"ndf": 8},
                         train={"iterations": 100, "batch_size": 4, "log_every": 10,
                                "sample_every": 0, "checkpoint_every": 40,
                                "on_collapse": "stop"})
    with pytest.raises(TrainingCollapsed) as stopped:
        train(config, progress=False)
    message = str(stopped.value)
    assert stopped.value.step == 70
    assert "latest.pt, is from step 40, before the collapse was first seen (step 50)" in message
    assert not list(run.glob("generator_*.safetensors"))  # nothing exported
    # the advice is a command resume accepts; the inputs still allow nothing but a
    # collapse, so the resumed run stops on it again
    advised = re.search(r"\(translate train (\S+) --resume (train\.lr=\S+)\)", message)
    again = run_cli("train", advised[1], "--resume", advised[2], "--quiet")
    assert "note: train.lr is now 0.0001 (was 0.0002)" in again.stderr
    assert again.returncode == 2 and "training stopped at step 70" in again.stderr
    resumed = tiny_config(blank_inputs, run, generator={"ngf": 8, "depth": 5},
                          discriminator={"ndf": 8},
                          train={"iterations": 100, "batch_size": 4, "log_every": 10,
                                 "sample_every": 0, "checkpoint_every": 40,
                                 "on_collapse": "warn"})
    train(resumed, resume=True, progress=False)
    rows = _rows(run)
    assert [r["event"] for r in rows if "event" in r] == ["collapse"]  # not said again
    assert [r["step"] for r in rows if "event" not in r] == list(range(10, 101, 10))


def test_exploding_losses_are_judged_against_the_runs_first_values():
    monitor = HealthMonitor("vanilla", iterations=1000, lr=2e-4, run="runs/x")
    assert monitor.observe_losses(1, {"g_total": 50.0, "d_total": 0.7, "g_l1": 0.5}) == []
    assert monitor.first_losses == {"g_total": 50.0, "d_total": 0.7}
    assert monitor.observe_losses(5, {"g_total": 4000.0, "d_total": 900.0}) == []  # < 1000x
    (event,) = monitor.observe_losses(10, {"g_total": 60.0, "d_total": 1500.0})
    assert event.name == "exploding" and event.figures["loss"] == "d_total"
    assert event.figures["since_step"] == 10 and "train.lr=2e-05" in event.advice
    assert monitor.alarm is event
    assert monitor.observe_losses(15, {"g_total": 60.0, "d_total": 2000.0}) == []  # said once
    assert monitor.alarm.figures["since_step"] == 10  # still going on
    assert monitor.observe_losses(20, {"g_total": 60.0, "d_total": 1.0}) == []
    assert monitor.alarm is None  # over
    huge = HealthMonitor("vanilla", iterations=1000)  # already absurd at the first read
    (event,) = huge.observe_losses(1, {"g_total": 2e14, "d_total": 0.7})
    assert "beyond what a healthy run reaches" in event.message


def _blow_up(root, out, lr, **train_options):
    """A tiny pix2pix run on ``root`` with learning rate ``lr``, its metrics logged rarely
    (so only the health checks read the losses in between)."""
    return tiny_config(root, out,
                       train={"iterations": 60, "lr": lr, "log_every": 50, "sample_every": 0,
                              "checkpoint_every": 20, **train_options})


def test_a_blow_up_is_named_within_ten_steps_and_stop_applies(shapes32, tmp_path, one_thread):
    run = tmp_path / "run"
    with pytest.raises(TrainingCollapsed) as stopped:
        train(_blow_up(shapes32, run, 1e6, on_collapse="stop"), progress=False)
    assert stopped.value.step <= 10 and stopped.value.event.name == "exploding"
    assert "no checkpoint had been written yet" in str(stopped.value)
    assert "train.lr=100000" in str(stopped.value)  # advice with a value
    events = [r for r in _rows(run) if "event" in r]
    assert [e["event"] for e in events] == ["exploding", "stopped"]
    from translate.train.report import read_run, _status

    assert _status(read_run(run)).startswith(f"stopped at step {stopped.value.step} by "
                                             "train.on_collapse=stop on exploding")


def test_non_finite_losses_stop_within_ten_steps_and_the_report_says_so(shapes32, tmp_path,
                                                                       one_thread):
    from translate.train.loop import TrainingDiverged
    from translate.train.report import read_run, _status

    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as diverged:
        train(_blow_up(shapes32, run, 1e30), progress=False)
    assert diverged.value.step <= 10
    assert _status(read_run(run)).startswith(f"stopped: diverged at step {diverged.value.step}:")


def test_a_blow_up_after_a_resume_with_a_higher_rate_is_named_within_ten_steps(
        shapes32, tmp_path, one_thread):
    """train.lr may change on resume (the collapse advice asks for it): the new rate is
    used from the first resumed step on, and losses that blow up from there are named
    within ten steps, against the values the run began with."""
    run = tmp_path / "run"
    train(_blow_up(shapes32, run, 2e-4, iterations=20), progress=False)
    assert not [r for r in _rows(run) if "event" in r]  # healthy
    with pytest.raises(TrainingCollapsed) as stopped:
        train(_blow_up(shapes32, run, 1e6, iterations=60, log_every=25, on_collapse="stop"),
              resume=True, progress=False)
    assert 20 < stopped.value.step <= 30
    assert "latest.pt, is from step 20, before the losses blew up" in str(stopped.value)
    rows = _rows(run)
    assert [r["event"] for r in rows if "event" in r] == ["exploding", "stopped"]
    assert [r["lr"] for r in rows if "lr" in r and r["step"] > 20] == [1e6]  # the new rate


def test_warnings_and_errors_start_on_their_own_line_after_the_progress_bar(shapes32,
                                                                            tmp_path):
    proc = run_cli("train", "configs/quickstart_shapes.yaml", f"data.root={shapes32}",
                   f"train.out={tmp_path / 'run'}", "train.lr=1e6", "train.iterations=40",
                   "data.load_size=36", "data.crop_size=32", "data.workers=0",
                   "generator.ngf=8", "generator.depth=5")
    assert proc.returncode == 2
    assert "it/s" in proc.stderr  # the bar was drawn
    lines = re.split(r"[\r\n]", proc.stderr)
    said = [line for line in lines if re.search(r"(warning|error):", line)]
    assert said and all(re.match(r"(warning|error):", line) for line in said), said
    assert lines[-2].startswith("error: training")


def test_stop_holds_for_a_run_resumed_while_collapsed(blank_inputs, tmp_path, one_thread):
    """A run that collapsed (said at step 70, under warn) and went on to step 100 is
    resumed with train.on_collapse=stop: the collapse was said before, but the run is still
    collapsed, so it stops at its first log step instead of training on and exporting."""
    run = tmp_path / "run"
    options = {"batch_size": 4, "log_every": 10, "sample_every": 0, "checkpoint_every": 100}
    tiny = {"generator": {"ngf": 8, "depth": 5}, "discriminator": {"ndf": 8}}
    train(tiny_config(blank_inputs, run, train={"iterations": 100, **options}, **tiny),
          progress=False)
    assert [r["event"] for r in _rows(run) if "event" in r] == ["collapse"]
    for export in run.glob("generator_*.safetensors"):
        export.unlink()
    with pytest.raises(TrainingCollapsed) as stopped:
        train(tiny_config(blank_inputs, run, train={"iterations": 150, **options,
                                                    "on_collapse": "stop"}, **tiny),
              resume=True, progress=False)
    assert stopped.value.step == 110
    assert not list(run.glob("generator_*.safetensors"))
    assert [r["event"] for r in _rows(run) if "event" in r] == ["collapse", "stopped"]
