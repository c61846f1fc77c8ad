"""Several processes under torchrun, on the CPU (gloo): real launches of ``python -m
torch.distributed.run --standalone --nproc_per_node=2 -m translate ...``.

Each launch starts three Python processes (the launcher and two workers), a few seconds on
two cores, so the runs are shared by the tests through module-scoped fixtures.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from translate.formats.state import load_state
from translate.train.config import ConfigError
from translate.devices import shard
from translate.infer.engine import Translator
from translate.train.loop import train

from conftest import ROOT, merge, single_thread, tiny_config

try:
    import tensorboard  # noqa: F401  (the dev extra has it; the TensorBoard check needs it)
    HAS_TENSORBOARD = True
except ImportError:
    HAS_TENSORBOARD = False

ENV = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
LAUNCH = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

# batch size 1 per process with batch norm, dropout and mismatched pairs: every kind of
# per-process state (RNG streams, mismatch memory, running statistics) matters for resume
STATEFUL = {
    "model": "pix2pix",
    "data": {"load_size": 36, "crop_size": 32, "workers": 0},
    "generator": {"ngf": 4, "depth": 5, "norm": "batch", "dropout": True},
    "discriminator": {"ndf": 4, "layers": 2},
    "train": {"iterations": 40, "decay_from": 20, "batch_size": 1, "log_every": 1,
              "sample_every": 0, "checkpoint_every": 1000},
}


def torchrun(*args, timeout=240, check=True):
    proc = subprocess.run([*LAUNCH, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"torchrun {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def write_config(path: Path, tree: dict) -> Path:
    path.write_text(yaml.safe_dump(tree))
    return path


def rows(run: Path) -> dict:
    return {r["step"]: {k: v for k, v in r.items() if k != "seconds"}
            for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def whole(shapes32, tmp_path_factory):
    """An uninterrupted 2-process run of STATEFUL."""
    folder = tmp_path_factory.mktemp("ddp")
    tree = merge(STATEFUL, {"data": {"root": str(shapes32)},
                            "train": {"out": str(folder / "run")}})
    config = write_config(folder / "stateful.yaml", tree)
    proc = torchrun("-m", "translate", "train", str(config), "--quiet")
    return folder / "run", config, proc


def test_two_processes_train_one_model(whole):
    """Process 0 alone logs and exports, once per step; the effective batch is reported;
    training ends with the replicas checked bit for bit (Replicas.verify)."""
    run, _, proc = whole
    assert "2 processes (gloo, cpu): batch 1 per process, effective batch 2" in proc.stderr
    assert proc.stdout.strip().splitlines() == [str(run)]  # printed by process 0 only
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text()
             .splitlines()]
    assert steps == list(range(1, 41))
    state = load_state(run / "checkpoints" / "latest.pt")
    assert state["step"] == 40 and state["world_size"] == 2
    (other,) = state["replicas"]  # process 1's own RNG streams and mismatch memory
    assert not torch.equal(other["rng"]["torch"], state["rng"]["torch"])
    assert not torch.equal(other["method"]["previous_b"], state["method"]["previous_b"])
    assert len(list(run.glob("generator_*.safetensors"))) == 1


def test_resume_under_torchrun_is_exact(whole, tmp_path):
    """SIGTERM to torchrun mid-run: both processes stop at the same step with one
    checkpoint; resuming with 2 processes ends with exactly the uninterrupted run's losses
    and weights. Resuming with another number of processes is refused."""
    reference, config, _ = whole
    tree = yaml.safe_load(config.read_text())
    tree["train"]["out"] = str(tmp_path / "run")
    config = write_config(tmp_path / "split.yaml", tree)
    run = tmp_path / "run"
    launcher = subprocess.Popen([*LAUNCH, "-m", "translate", "train", str(config), "--quiet"],
                                cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and launcher.poll() is None:
        log = run / "metrics.jsonl"
        if log.exists() and log.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    launcher.send_signal(signal.SIGTERM)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0, err
    assert "stopped at step" in err, err
    state = load_state(run / "checkpoints" / "latest.pt")
    stopped = state["step"]
    assert 2 <= stopped < 40
    assert max(rows(run)) == stopped

    with pytest.raises(ConfigError, match="trained by 2 process"):
        train(tiny_config(Path(tree["data"]["root"]), run, **STATEFUL), resume=True,
              progress=False)

    torchrun("-m", "translate", "train", str(run), "--resume", "--quiet")
    assert rows(run) == rows(reference)
    ours, theirs = (load_file(r / "generator_a2b.safetensors") for r in (run, reference))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def assert_one_board_writer(run: Path, steps: list[int]) -> None:
    """Only process 0 writes TensorBoard events: one event file, each step logged once."""
    from tensorboard.backend.event_processing import event_accumulator
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 1
    acc = event_accumulator.EventAccumulator(str(run / "tb"),
                                             size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/g_total")] == steps


def test_two_processes_match_one_with_the_effective_batch(shapes32, tmp_path):
    """CycleGAN (two generators, two discriminators, D called with frozen weights in the G
    phase) without anything that couples the images of a batch or differs per process (no
    normalisation, dropout or image pool): 2 processes x batch 1 must train what 1 process x
    batch 2 trains, from the same stream positions with averaged gradients. Measured:
    losses agree to 2e-7 (relative), gradient norms to 2e-5 (summed in another order), outputs
    to 1e-9. (With instance norm the biases before it get gradients that are pure rounding
    noise, which Adam turns into full steps: the runs then drift apart by 1e-4 within a few
    steps, although both are correct.)"""
    tree = {"model": "cyclegan", "data": {"root": str(shapes32), "load_size": 36,
                                          "crop_size": 32, "workers": 0},
            "generator": {"arch": "resnet", "ngf": 4, "depth": 2, "norm": "none"},
            "discriminator": {"ndf": 4, "layers": 2, "norm": "none"},
            "train": {"iterations": 6, "batch_size": 1, "log_every": 1, "sample_every": 0,
                      "checkpoint_every": 6, "pool_size": 0, "out": str(tmp_path / "two")}}
    two_tree = merge(tree, {"train": {"tensorboard": HAS_TENSORBOARD}})
    torchrun("-m", "translate", "train", str(write_config(tmp_path / "two.yaml", two_tree)),
             "--quiet")
    if HAS_TENSORBOARD:
        assert_one_board_writer(tmp_path / "two", steps=list(range(1, 7)))
    with single_thread():
        one = train(tiny_config(shapes32, tmp_path / "one",
                                **merge(tree, {"train": {"batch_size": 2,
                                                         "out": str(tmp_path / "one")}})),
                    progress=False)
    two_rows, one_rows = rows(tmp_path / "two"), rows(one)
    assert sorted(two_rows) == sorted(one_rows) == list(range(1, 7))
    for step in one_rows:
        assert two_rows[step].keys() == one_rows[step].keys()
        for key, value in one_rows[step].items():
            rel = 1e-4 if key.startswith("grad_norm_") else 1e-5
            assert two_rows[step][key] == pytest.approx(value, rel=rel, abs=1e-7), (step, key)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for direction in ("a2b", "b2a"):
        outputs = [Translator.from_checkpoint(r, direction, device="cpu")(x)
                   for r in (one, tmp_path / "two")]
        assert (outputs[0] - outputs[1]).abs().max() < 1e-5


def test_two_processes_convert_each_file_once(whole, tmp_path):
    """The plan (after --skip-existing) is split between the processes: every input is
    converted by exactly one, outputs that existed are left alone, failures of both are
    reported once by process 0 and the exit status says some failed."""
    run, _, _ = whole
    src, dst = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"img{i}.png" for i in range(7)] + [f"sub/img{i}.png" for i in range(4)]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(src / name)
    (src / "broken.png").write_bytes(b"not an image")
    (src / "sub" / "broken.png").write_bytes(b"nor this")
    kept = ["img0.png", "sub/img3.png"]
    for name in kept:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        (dst / name).write_bytes(b"existing output")
    proc = torchrun("-m", "translate", "convert", "--checkpoint", str(run), "--input", str(src),
                    "--output", str(dst), "--skip-existing", "--workers", "0", "--quiet",
                    check=False)
    assert proc.returncode != 0  # some files failed on some process
    converted = len(names) - len(kept)
    assert proc.stderr.count("converted ") == 1
    assert f"converted {converted} image(s)" in proc.stderr, proc.stderr
    assert f"skipped {len(kept)} image(s)" in proc.stderr
    assert "2 file(s) could not be converted" in proc.stderr
    assert proc.stderr.count("broken.png:") == 2
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*.png")) == sorted(names)
    for name in kept:
        assert (dst / name).read_bytes() == b"existing output"
    for name in set(names) - set(kept):
        with Image.open(dst / name) as img:
            assert img.size == (24, 20)


PRIMITIVES = r'''
import signal, sys, torch
from torch import nn
from translate.devices import start
from translate.train.replicas import ReplicaMismatch, Replicas

ctx = start(torch.device("cpu"))
torch.manual_seed(ctx.rank)  # different initial weights: Replicas must copy process 0's
nets = nn.ModuleDict({"lin": nn.Linear(3, 2), "bn": nn.BatchNorm1d(2), "unused": nn.Linear(1, 1)})
replicas = Replicas(ctx, nets)
replicas.verify()
lin, bn = nets["lin"], nets["bn"]
lin.weight.grad = torch.full_like(lin.weight, ctx.rank + 1.0)
if ctx.rank == 1:
    lin.bias.grad = torch.full_like(lin.bias, 4.0)
replicas.average_gradients(list(nets.parameters()))
bn.running_mean.fill_(ctx.rank)
own = {"loss": torch.tensor(float(ctx.rank))}
same, stop = replicas.finish_step(own, signal.SIGTERM if ctx.rank == 1 else 0)
assert same is own  # terms are averaged when logged, not at every step
terms = {k: float(v) for k, v in replicas.mean_of(own).items()}
others = replicas.gather({"rank": torch.tensor(ctx.rank)})
bn.running_var[0] += 1e-3 * ctx.rank
try:
    replicas.verify()
    caught = ""
except ReplicaMismatch as err:
    caught = str(err)
result = [lin.weight.grad.unique().tolist(), lin.bias.grad.unique().tolist(),
          nets["unused"].weight.grad, bn.running_mean.tolist(), terms, int(stop),
          [int(o["rank"]) for o in others], repr(caught)]
with open(f"{sys.argv[1]}/rank{ctx.rank}.txt", "w") as f:  # the processes share stdout
    f.write(" ".join(map(str, result)))
'''


def test_replica_primitives(tmp_path):
    """Gradient averaging (a parameter with a gradient on one process only counts as zero on
    the other; one with none anywhere keeps none), averaged running statistics and loss
    terms, agreement on a signal only one process received, gathering of per-process state,
    and verify() naming the tensor that differs, on every process."""
    script = tmp_path / "primitives.py"
    script.write_text(PRIMITIVES)
    torchrun(str(script), str(tmp_path))
    for rank in ("0", "1"):
        rest = (tmp_path / f"rank{rank}.txt").read_text()
        assert rest.startswith("[1.5] [2.0] None [0.5, 0.5] {'loss': 0.5} 15 ")
        assert ("[1]" if rank == "0" else "[]") in rest
        assert "different values of 1 tensor(s): bn.running_var" in rest


def test_shards_partition_the_plan():
    items = list(range(11))
    shares = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(shares, [])) == items
    assert [len(s) for s in shares] == [4, 4, 3]
