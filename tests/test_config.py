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


# --- Method options ---------------------------------------------------------------------------

def test_each_method_owns_its_options_with_the_papers_defaults(tmp_path):
    pix = load_config(write(tmp_path, "data: {root: x}\n"))
    cyc = load_config(write(tmp_path, "model: cyclegan\ndata: {root: x}\n"))
    assert (pix.method.l1, pix.method.mismatch) == (100.0, 1.0)
    assert (cyc.method.cycle, cyc.method.identity, cyc.method.pool_size) == (10.0, 0.5, 50)
    assert yaml.safe_load(cyc.to_yaml())["method"] == {"cycle": 10.0, "identity": 0.5,
                                                        "pool_size": 50}
    assert "l1" not in yaml.safe_load(pix.to_yaml())["loss"]


def test_earlier_keys_still_set_the_method_options(tmp_path):
    c = load_config(write(tmp_path, "loss: {l1: 50, mismatch: 0, cycle: 3}\n"
                                    "train: {pool_size: 7}\n"), ["loss.mismatch=0.25"])
    assert (c.method.l1, c.method.mismatch) == (50.0, 0.25)  # cycle, pool_size: cyclegan's
    assert (c.loss.l1, c.loss.mismatch) == (50.0, 0.25)      # still readable there
    c = load_config(write(tmp_path, "model: cyclegan\nloss: {cycle: 3}\n"),
                    ["train.pool_size=7", "method.identity=0.1"])
    assert (c.method.cycle, c.method.identity, c.method.pool_size) == (3.0, 0.1, 7)
    assert (c.loss.cycle, c.train.pool_size) == (3.0, 7)


def test_another_methods_option_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "method: {cycle: 3}\n"))
    assert str(err.value) == ("unknown key 'cycle' in 'method'; valid keys in 'method': "
                              "l1, mismatch, adversarial, feature_matching, r1, gradient")
    assert err.value.key == "method.cycle"
    with pytest.raises(ConfigError, match="method.pool_size must be at least 0"):
        load_config(write(tmp_path, "model: cyclegan\n"), ["method.pool_size=-1"])


def test_identity_needs_equal_channels_when_asked_for(tmp_path):
    with pytest.raises(ConfigError, match="domain A has 1 channel") as err:
        load_config(write(tmp_path, "model: cyclegan\ndata: {channels_a: 1}\n"),
                    ["method.identity=0.5"])
    assert err.value.key == "method.identity"
    load_config(write(tmp_path, "model: cyclegan\ndata: {channels_a: 1}\n"),
                ["method.identity=0"])
    load_config(write(tmp_path, "model: cyclegan\ndata: {channels_a: 1}\n"))  # default: a note


def test_recipes_keep_their_method_settings():
    from pathlib import Path
    configs = Path(__file__).parent.parent / "configs"
    for path in sorted(configs.glob("*.yaml")):
        c = load_config(path)
        raw = yaml.safe_load(path.read_text())
        if c.model == "cyclegan":
            assert c.method.pool_size == raw.get("train", {}).get("pool_size", 50), path
        elif c.model == "cut":
            assert c.method.variant == raw["method"]["variant"], path
        else:
            assert c.method.l1 == raw.get("loss", {}).get("l1", 100.0), path


def test_loading_leaves_the_callers_config_as_written(tmp_path):
    """The run records the resolved precision; the config object it was given is unchanged."""
    from translate.devices import pick_device
    from translate.train.loop import resolved

    c = load_config(write(tmp_path, "data: {root: x}\n"))
    assert c.train.precision == "auto"
    run = resolved(c, pick_device("cpu"))
    assert run.train.precision == "fp32" and c.train.precision == "auto"
    assert run.method == c.method and run.loss.l1 == c.loss.l1 == 100.0
