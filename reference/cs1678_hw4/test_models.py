"""The AlexNet family against the handout's three tables and the stored expectations."""
import pytest
import torch
from torch import nn

import alexnet
from alexnet import EXPECTED_PARAMS, MODELS, count_params

NAMES = list(MODELS)
TABLED = ["AlexNet", "AlexNetLargeKernel", "AlexNetAvgPooling"]


def _rows(pool):
    """Part A's table with `pool` as the pooling layer type (AvgPooling only swaps it)."""
    return [
        ("Conv2d", [96, 55, 55], 34_944), ("ReLU", [96, 55, 55], 0), (pool, [96, 27, 27], 0),
        ("Conv2d", [256, 27, 27], 614_656), ("ReLU", [256, 27, 27], 0), (pool, [256, 13, 13], 0),
        ("Conv2d", [384, 13, 13], 885_120), ("ReLU", [384, 13, 13], 0),
        ("Conv2d", [384, 13, 13], 1_327_488), ("ReLU", [384, 13, 13], 0),
        ("Conv2d", [256, 13, 13], 884_992), ("ReLU", [256, 13, 13], 0), (pool, [256, 6, 6], 0),
    ] + HEAD_ROWS


HEAD_ROWS = [
    ("Flatten", [9216], 0), ("Dropout", [9216], 0), ("Linear", [4096], 37_752_832),
    ("ReLU", [4096], 0), ("Dropout", [4096], 0), ("Linear", [4096], 16_781_312),
    ("ReLU", [4096], 0), ("Linear", [4], 16_388),
]

# (layer type, output shape without the batch, Param #) in the tables' order, num_classes = 4.
TABLE_ROWS = {
    "AlexNet": _rows("MaxPool2d"),
    "AlexNetAvgPooling": _rows("AvgPool2d"),
    "AlexNetLargeKernel": [
        ("Conv2d", [96, 27, 27], 127_104), ("ReLU", [96, 27, 27], 0),
        ("Conv2d", [256, 13, 13], 1_204_480), ("ReLU", [256, 13, 13], 0),
        ("Conv2d", [384, 13, 13], 885_120), ("ReLU", [384, 13, 13], 0),
        ("Conv2d", [384, 13, 13], 1_327_488), ("ReLU", [384, 13, 13], 0),
        ("Conv2d", [256, 6, 6], 884_992), ("ReLU", [256, 6, 6], 0),
    ] + HEAD_ROWS,
}

# Geometry of the tables' Kernel / Padding / Stride columns, with their blanks filled in:
# convs (kernel, padding, stride), pools (kernel, stride).
CONV_GEOMETRY = {
    "AlexNet": [(11, 0, 4), (5, 2, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1)],
    "AlexNetAvgPooling": [(11, 0, 4), (5, 2, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1)],
    "AlexNetLargeKernel": [(21, 1, 8), (7, 2, 2), (3, 1, 1), (3, 1, 1), (3, 0, 2)],
}


def build(name, num_classes, device=None):
    torch.manual_seed(0)
    with torch.device(device or "cpu"):
        return MODELS[name]({"num_classes": num_classes})


def trace_rows(model, x):
    """Run `features` then `classifier` layer by layer: [(type, shape[1:], params)]."""
    rows = []
    for layer in [*model.features, *model.classifier]:
        x = layer(x)
        rows.append((type(layer).__name__, list(x.shape[1:]), count_params(layer)))
    return rows, x


@pytest.mark.parametrize("num_classes", [4, 7])
@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_expectation(name, num_classes):
    model = build(name, num_classes, device="meta")  # shapes only: no 58M-weight init
    assert count_params(model) == EXPECTED_PARAMS[name][num_classes]


@pytest.mark.parametrize("name", TABLED)
def test_expectations_equal_table_totals(name):
    total = sum(params for _, _, params in TABLE_ROWS[name])
    assert EXPECTED_PARAMS[name][4] == total
    # 7 classes: only the last Linear grows, from 4096*4+4 to 4096*7+7 weights
    assert EXPECTED_PARAMS[name][7] == total - (4096 * 4 + 4) + (4096 * 7 + 7)


def test_known_totals():
    # independent of the tables above: the numbers quoted in the brief and the arithmetic
    assert EXPECTED_PARAMS["AlexNet"][4] == 58_297_732
    tiny_convs = (48 * 3 * 121 + 48) + (128 * 48 * 25 + 128) + (192 * 128 * 9 + 192) \
        + (192 * 192 * 9 + 192) + (128 * 192 * 9 + 128)
    tiny_head = (4608 * 2048 + 2048) + (2048 * 1024 + 1024)
    assert EXPECTED_PARAMS["AlexNetTiny"][4] == tiny_convs + tiny_head + 1024 * 4 + 4
    assert EXPECTED_PARAMS["AlexNetTiny"][7] == tiny_convs + tiny_head + 1024 * 7 + 7
    assert EXPECTED_PARAMS["AlexNetDilation"] == EXPECTED_PARAMS["AlexNet"]


@pytest.mark.parametrize("name", TABLED)
def test_layers_match_table(name):
    model = build(name, 4)
    rows, out = trace_rows(model, torch.randn(1, 3, 227, 227))
    assert rows == TABLE_ROWS[name]
    assert out.shape == (1, 4)

    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(m.kernel_size[0], m.padding[0], m.stride[0]) for m in convs] == CONV_GEOMETRY[name]
    assert all(m.dilation == (1, 1) for m in convs)
    pools = [m for m in model.features if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert [(m.kernel_size, m.stride) for m in pools] == ([] if name == "AlexNetLargeKernel"
                                                           else [(3, 2)] * 3)
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]


@pytest.mark.parametrize("num_classes", [4, 7])
@pytest.mark.parametrize("name", NAMES)
def test_forward_shape(name, num_classes):
    model = build(name, num_classes).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 227, 227))
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


def test_untabled_variants_feature_maps():
    x = torch.randn(1, 3, 227, 227)
    expected = {  # (channels, side) after each ReLU
        "AlexNetTiny": [(48, 55), (128, 27), (192, 13), (192, 13), (128, 13)],
        "AlexNetDilation": [(96, 55), (256, 27), (384, 13), (384, 13), (256, 13)],
    }
    for name, stages in expected.items():
        model = build(name, 7, device="meta")  # conv arithmetic works on meta tensors
        rows, out = trace_rows(model, x.to("meta"))
        after_relu = [(s[0], s[1]) for t, s, _ in rows if t == "ReLU" and len(s) == 3]
        assert after_relu == stages, name
        flat = [s for t, s, _ in rows if t == "Flatten"]
        assert flat == ([[4608]] if name == "AlexNetTiny" else [[9216]])
        widths = [m.out_features for m in model.classifier if isinstance(m, nn.Linear)]
        assert widths == ([2048, 1024, 7] if name == "AlexNetTiny" else [4096, 4096, 7])
        convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
        if name == "AlexNetDilation":
            assert [(m.dilation[0], m.padding[0]) for m in convs] == [(2, 5), (2, 4), (2, 2), (2, 2), (2, 2)]


def test_stage_sizes_arithmetic():
    assert alexnet.stage_sizes(alexnet.ALEXNET) == [(55, 27), (27, 13), (13, 13), (13, 13), (13, 6)]
    assert alexnet.stage_sizes(alexnet.LARGE_KERNEL) == [(27, 27), (13, 13), (13, 13), (13, 13), (6, 6)]
    assert alexnet.flat_features(alexnet.TINY) == 4608


def test_state_dict_layout_is_stable():
    keys = list(build("AlexNet", 4, device="meta").state_dict())
    assert keys[:2] == ["features.0.weight", "features.0.bias"]
    assert keys[-2:] == ["classifier.7.weight", "classifier.7.bias"]
    assert len(keys) == 16  # 5 convs + 3 linears, weight and bias each


def test_dropout_only_in_training():
    model = build("AlexNetTiny", 4)
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), model(x))
        model.train()
        torch.manual_seed(1)
        a = model(x)
        torch.manual_seed(2)
        assert not torch.equal(a, model(x))


def test_avg_pooling_differs_from_max_pooling_only_in_pools():
    max_model, avg_model = build("AlexNet", 4).eval(), build("AlexNetAvgPooling", 4).eval()
    avg_model.load_state_dict(max_model.state_dict())  # same keys, same shapes
    x = torch.randn(1, 3, 227, 227)
    with torch.no_grad():
        assert not torch.allclose(max_model(x), avg_model(x))
