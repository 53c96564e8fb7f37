"""ort-cpu: fusion detection from onnxruntime's optimized model, rows to kernels, the
one-kernel models, the relaxed surrogate (no assertion on timing values)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiote.backends.ortcpu import fusion, kernels, plan
from symbiote.backends.ortcpu.model import COLUMNS, bracket
from symbiote.frontend import load
from symbiote.frontend.zoo import tiny_cnn
from symbiote.ir.lower import lower
from symbiote.search.prepare import prepare_graph


@functools.cache
def rules():
    return fusion.fusion_rules()


def test_optimized_model_fuses_conv_relu_on_a_small_cnn():
    ks = fusion.optimized_kernels(tiny_cnn(image_size=8, channels=(4, 8, 8)))
    fused = [k for k in ks if k.op_type == "FusedConv"]
    assert fused, [k.op_type for k in ks]
    assert any("stage0.conv" in k.members and "stage0.relu" in k.members for k in fused)
    # the residual Add is not fused into its conv at this level: it stays a kernel of its own
    assert any(k.op_type == "Add" and k.members == ("res.add",) for k in ks)


def test_fusion_rules_probed():
    r = rules()
    assert {"conv+act", "gemm+act"} <= r
    assert r <= set(fusion.PROBES)


def test_rows_map_to_fused_kernels():
    g = prepare_graph(load(tiny_cnn(image_size=8, channels=(4, 8, 8))), "canonicalize,fold-bn,fuse-activations")
    wl = lower(g)
    cols = {f: np.asarray(getattr(wl, f)) for f in COLUMNS}
    plans = dict(zip(wl.names, plan.row_kernels(cols, wl.ops, wl.kinds, rules()), strict=True))
    assert plans["stage0.conv"].kernel.op == "conv" and plans["stage0.conv"].kernel.get("act") == 1
    assert plans["stage0.relu"].kernel is None and plans["stage0.relu"].absorbed
    assert plans["res.conv"].kernel.get("act") == 0          # followed by the Add, not an activation
    assert plans["res.add"].kernel.op == "add"
    assert plans["res.relu"].kernel is not None and plans["res.relu"].kernel.op == "relu"  # not fused into an Add
    assert plans["flatten"].kernel.op == "reshape"
    # without the fusion rule the conv's activation is a kernel of its own
    alone = dict(zip(wl.names, plan.row_kernels(cols, wl.ops, wl.kinds, frozenset()), strict=True))
    assert alone["stage0.conv"].kernel.get("act") == 0 and alone["stage0.relu"].kernel.op == "relu"


SMALL = [
    kernels.kernel("conv", n=1, k=4, c=4, p=3, q=3, r=3, s=3, g=1, sh=1, sw=1, dh=1, dw=1, act=1),
    kernels.kernel("conv", n=1, k=4, c=4, p=3, q=3, r=3, s=3, g=4, sh=2, sw=2, dh=1, dw=1, act=0),
    kernels.kernel("conv_transpose", n=1, k=4, c=4, p=3, q=3, r=2, s=2, g=1, sh=2, sw=2, dh=1, dw=1, act=0),
    kernels.kernel("gemm", m=2, c=8, k=4, act=1),
    kernels.kernel("matmul", batch=1, m=2, c=8, k=4, bias=1, scale=0, act=0),
    kernels.kernel("bmm", batch=2, m=3, c=4, k=5, scale=1),
    kernels.kernel("lstm", seq=3, batch=1, input=4, hidden=8),
    kernels.kernel("gru", seq=3, batch=1, input=4, hidden=6),
    kernels.kernel("softmax", elems=32, axis=8),
    kernels.kernel("skip_layernorm", elems=32, axis=8),
    kernels.kernel("add", elems=32, inputs=2),
    kernels.kernel("mul", elems=32, inputs=1),
    kernels.kernel("erf", elems=32),
    kernels.kernel("reduce_mean", rows=4, axis=8),
    kernels.kernel("maxpool", h=8, w=8, win=2, stride=2),
    kernels.kernel("copy", elems=128),
    kernels.kernel("reshape", elems=128),
]


@pytest.mark.parametrize("k", SMALL, ids=lambda k: k.op)
def test_one_kernel_models_run(k):
    from symbiote.backends.ortcpu import measure

    sess = measure.session(kernels.build_model(k), 1)
    out = sess.run(None, measure.feeds_for(sess))
    assert np.all(np.isfinite(out[0]))


def test_bracket_is_exact_on_the_grid_and_smooth_between():
    x0 = jnp.array([64.0, 10.0])
    step = jnp.array([8.0, 0.0])
    lo, hi, w = bracket(jnp.array([64.0, 10.0]), x0, step)
    assert lo.tolist() == [64.0, 10.0] and hi.tolist() == [72.0, 10.0] and w.tolist() == [0.0, 0.0]
    lo, hi, w = bracket(jnp.array([68.0, 10.0]), x0, step)
    assert lo[0] == 64.0 and hi[0] == 72.0 and 0.0 < float(w[0]) < 1.0
    g = jax.grad(lambda x: bracket(jnp.stack([x, 10.0]), x0, step)[2][0])(68.0)
    assert float(g) > 0
