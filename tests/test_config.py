"""Config: defaults, YAML, typed overrides, clear errors, the resolved config in the run."""

import pytest
import yaml

from translate.train.config import ConfigError, load_config


def write(tmp_path, text, name="exp.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_paper_defaults(tmp_path):
    c = load_config(write(tmp_path, "data: {root: x}\n"))
    assert (c.model, c.generator.arch, c.generator.depth, c.generator.norm) == \
        ("pix2pix", "unet", 8, "batch")
    assert (c.discriminator.arch, c.discriminator.layers) == ("patch", 3)
    assert (c.loss.gan, c.loss.l1) == ("vanilla", 100.0) and c.loss.mismatch > 0
    assert (c.train.lr, c.train.beta1, c.train.batch_size) == (2e-4, 0.5, 1)
    assert c.train.out == "runs/exp"  # named after the config file
    assert c.train.decay_from == c.train.iterations // 2


def test_overrides_are_typed(tmp_path):
    c = load_config(write(tmp_path, "train: {iterations: 10}\n"),
                    ["train.lr=1e-4", "train.iterations=1e3", "data.flip=false",
                     "generator.norm=instance", "train.decay_from=null"])
    assert c.train.lr == 1e-4 and isinstance(c.train.lr, float)
    assert c.train.iterations == 1000 and isinstance(c.train.iterations, int)
    assert c.data.flip is False and c.generator.norm == "instance"


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "train: {lrr: 0.1}\n"))
    msg = str(err.value)
    assert "lrr" in msg and "'lr'" in msg and "batch_size" in msg and "checkpoint_every" in msg


def test_unknown_override_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError, match="valid keys in 'data'.*crop_size"):
        load_config(write(tmp_path, ""), ["data.cropsize=3"])


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match="valid keys at the top level.*discriminator"):
        load_config(write(tmp_path, "optim: {lr: 1}\n"))


@pytest.mark.parametrize("override,message", [
    ("loss.gan=wgan", "loss.gan must be one of vanilla, lsgan, hinge, wgan-gp"),
    ("train.batch_size=two", "train.batch_size must be an integer"),
    ("train.batch_size=0", "train.batch_size must be at least 1"),
    ("train.iterations=1.5", "train.iterations must be an integer"),
    ("data.flip=maybe", "data.flip must be true or false"),
    ("model=stargan", "model must be one of"),
    ("data.crop_size=100", "multiple of 256"),
    ("data.load_size=128", "must not exceed data.load_size"),
    ("train.lr", "must look like section.key=value"),
    ("train.decay_from=999999999", "after the last iteration"),
])
def test_bad_values_are_explained(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(write(tmp_path, ""), [override])


def test_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_round_trip(tmp_path):
    c = load_config(write(tmp_path, "data: {root: d}\n"), ["train.seed=7"])
    again = load_config(write(tmp_path, c.to_yaml(), "again.yaml"))
    assert again == c
    assert yaml.safe_load(c.to_yaml())["train"]["seed"] == 7


def test_shipped_recipes_load():
    from pathlib import Path
    recipes = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    assert recipes
    for path in recipes:
        load_config(path)
