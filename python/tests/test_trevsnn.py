import pytest
import torch
from conftest import TREV_TINY, profile_path

from snnmem_torch import profile as P
from snnmem_torch.build import build
from snnmem_torch.errors import UsageError
from snnmem_torch.measure import measure
from snnmem_torch.strategies import Trainer
from snnmem_torch.trevsnn import KEPT_STATE, KEPT_STEM, TRevNet, TurnOffNeuron, verify


def test_bundled_profile_levels_as_swift_builds_them():
    prof = P.load(profile_path("trevsnn-cifar"))
    trev = prof.layers[-1]
    assert trev.kind == "trevsnn" and trev.output_shape == (10,)
    spec = trev.trev
    assert [level.state_shape for level in spec.levels] == [(48, 16, 16), (96, 8, 8), (192, 4, 4), (384, 2, 2)]
    # level 0 keeps the stem's resolution (1x1 down conv), the others halve it (3x3 stride 2)
    assert [(l.down[1].params["kernel"], l.down[1].params["stride"]) for l in spec.levels] == [(1, 1), (3, 2), (3, 2), (3, 2)]
    assert [len(level.up) for level in spec.levels] == [4, 4, 4, 0]
    assert spec.levels[0].up[3].params["factor"] == 2 and spec.levels[0].up[0].input_shape == (96, 8, 8)
    main = spec.levels[1].blocks[0].main
    assert [l.path for l in main] == [f"trev/level1/block0/main/{n}" for n in
                                      ("neuron0", "dwconv1", "pwconv2", "neuron3", "pwconv4", "scale5")]
    assert main[1].params["groups"] == 96 and main[3].input_shape == (384, 8, 8)
    # turn-off neurons take the profile's threshold and surrogate
    assert main[0].neuron.type == "turnoff" and main[0].neuron.surrogate == "atan" and main[0].neuron.threshold == 1.0
    assert [(l.path, l.output_shape) for l in spec.head] == [
        ("trev/head/neuron0", (384, 2, 2)), ("trev/head/avgpool1", (384, 1, 1)), ("trev/head/flatten2", (384,)),
        ("trev/head/linear3", (10,))]


def test_columns_have_their_own_weights_and_swifts_parameters():
    prof = P.parse(TREV_TINY, "tiny.yaml")
    net = build(prof, timesteps=3)
    assert net.step_mode == "s"
    assert "col2/trev/level1/block1/main/scale5" in net.layers and "col3/trev/level0/down/conv1" not in net.layers
    assert "col0/trev/level1/up/conv1" not in net.layers  # the top level has no up path
    assert isinstance(net.layers["col1/trev/level0/down/neuron0"], TurnOffNeuron)
    assert net.kinds["col1/trev/level0/down/neuron0"] == "turnoff" and net.neurons == []
    # stem 108 + bn 8; per column: level0 (down 16 + 8, up 32 + 8, block 36 + 40 + 36 + 1, alpha 4) = 181,
    # level1 (down 288 + 16, two blocks of 72 + 144 + 136 + 1, alpha 8) = 1018, head 8 * 3 + 3 = 27
    assert sum(p.numel() for p in net.parameters()) == 116 + 3 * (181 + 1018 + 27)
    logits = net(torch.rand(2, 3, 8, 8))
    assert [tuple(x.shape) for x in logits] == [(2, 3)] * 3


def test_trevsnn_gradients_equal_bptts_and_states_are_rebuilt():
    result = verify(P.parse(TREV_TINY, "tiny.yaml"), batch=2, timesteps=3)
    assert result["maxRelGradDiff"] < 1e-5, result
    assert len(result["reconstruction"]) == 2 * 2  # columns 0 and 1, two levels each
    assert result["maxRelReconstructionError"] < 1e-5, result


def test_column_zero_alphas_get_no_gradient_and_no_optimizer_state():
    trainer = Trainer(P.parse(TREV_TINY, "tiny.yaml"), "trevsnn", 2, 3)
    trainer.step()
    trev = next(m for m in trainer.net.modules() if isinstance(m, TRevNet))
    assert all(alpha not in trainer.optimizer.state for alpha in trev.columns[0].alphas)
    assert all(alpha in trainer.optimizer.state for column in trev.columns[1:] for alpha in column.alphas)


def test_trevsnn_keeps_the_stem_output_and_the_last_states_whatever_t(write_profile):
    path = write_profile(TREV_TINY)
    kept = {}
    for t in (2, 3):
        m = measure(path, "trevsnn", batch=2, timesteps=t, stream=False)
        by_layer = {entry["layer"]: entry for entry in m["savedByLayer"] if entry["bytes"]}
        assert set(by_layer) == {"stem_bn", "trev", "loss"}  # the stem conv keeps only the images (an input)
        names = [tensor["name"] for tensor in by_layer["trev"]["tensors"]]
        assert names == [KEPT_STEM, KEPT_STATE.format(0), KEPT_STATE.format(1)]
        # stem output 2x4x4x4 floats; last states 2x4x4x4 and 2x8x2x2
        assert by_layer["trev"]["bytes"] == 4 * (128 + 128 + 64)
        kept[t] = by_layer["trev"]["bytes"]
    assert kept[2] == kept[3]


def test_bptt_keeps_every_columns_graph(write_profile):
    path = write_profile(TREV_TINY)
    saved = {}
    for t in (2, 3):
        m = measure(path, "bptt", batch=2, timesteps=t, stream=False)
        layers = {entry["layer"]: entry["bytes"] for entry in m["savedByLayer"]}
        # the alpha term keeps c[l][t-1] (MulBackward0) for columns t >= 1
        assert layers["col1/trev/level0"] == 2 * 64 * 4 and "col0/trev/level0" not in layers
        # a turn-off neuron keeps x - threshold, the scale its input
        assert layers[f"col{t - 1}/trev/level1/block1/main/neuron3"] == 2 * 16 * 4 * 4
        assert layers[f"col{t - 1}/trev/level1/block1/main/scale5"] == 2 * 8 * 4 * 4
        saved[t] = m["savedBytes"] - layers["stem_bn"] - layers["loss"]
    # Every column after the first keeps the first's bytes plus its up path (turn-off neuron 256, 1x1 conv
    # 256, batch norm 128 + 2 * 16) and its alpha terms (c[0][t-1] 512, c[1][t-1] 256).
    column = saved[3] - saved[2]
    assert column == (saved[2] - column) + (256 + 256 + 160) + (512 + 256)


@pytest.mark.parametrize("strategy,profile,message", [
    ("sltt", "trev", "sltt does not apply to a T-RevSNN network"),
    ("checkpoint", "trev", "checkpoint does not apply"),
    ("revsnn", "trev", "revsnn does not apply"),
    ("trevsnn", "cifarnet", "trevsnn needs a `trevsnn:` network"),
])
def test_strategies_that_do_not_apply_are_refused(strategy, profile, message):
    prof = P.parse(TREV_TINY, "tiny.yaml") if profile == "trev" else P.load(profile_path(profile))
    with pytest.raises(UsageError, match=message):
        Trainer(prof, strategy, 1, 2)


def test_stateful_neurons_inside_the_network_are_refused():
    # Refused by the loader where the network's `neuron:` is written, as the Swift loader does.
    from snnmem_torch.errors import ProfileError
    text = TREV_TINY.replace("      classes: 3", "      classes: 3\n      neuron: {type: lif, tau: 2.0}")
    with pytest.raises(ProfileError, match="stateless turn-off neurons") as info:
        P.parse(text, "tiny.yaml")
    assert info.value.line == text.splitlines().index("      neuron: {type: lif, tau: 2.0}") + 1


def test_autocast_is_refused():
    with pytest.raises(UsageError, match="use float32"):
        Trainer(P.parse(TREV_TINY, "tiny.yaml"), "trevsnn", 1, 2, dtype="bfloat16")
