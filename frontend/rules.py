"""The lowering rules table: ONNX op type -> canonical IR op kind (:mod:`symbiote.ir.ops`).

An op with no rule (or in a domain the table does not cover) becomes ``ops.OPAQUE``: it
keeps its ONNX definition, so ``save()`` writes it back unchanged, and cost models
price it as memory traffic. ``opaque`` ops are counted and named by ``inspect``.
"""

from __future__ import annotations

from symbiote.ir import ops

_TABLE: dict[str, tuple[str, ...]] = {
    ops.CONV: ("Conv", "ConvInteger", "QLinearConv"),
    ops.CONV_TRANSPOSE: ("ConvTranspose",),
    ops.GEMM: ("Gemm",),
    ops.MATMUL: ("MatMul", "MatMulInteger", "QLinearMatMul", "Einsum", "Attention"),
    ops.POOL: ("MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
               "MaxRoiPool", "RoiAlign"),
    ops.ELEMENTWISE: (
        "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor", "Ceil",
        "Round", "Sign", "Max", "Min", "Sum", "Mean", "Mod", "Where", "Cast", "CastLike", "Equal", "Less",
        "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "IsNaN", "IsInf", "BitShift",
        "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
        "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Erf", "QuantizeLinear", "DequantizeLinear",
        "DynamicQuantizeLinear", "Identity", "Dropout", "CumSum", "Trilu", "Clip",
    ),
    ops.NORM: ("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
               "LpNormalization", "MeanVarianceNormalization", "LRN", "RMSNormalization"),
    ops.ACTIVATION: (
        "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "Tanh", "HardSwish",
        "Gelu", "Mish", "Softplus", "Softsign", "ThresholdedRelu", "Shrink", "Softmax", "LogSoftmax",
        "Hardmax", "Swish",
    ),
    ops.REDUCE: ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                 "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "TopK"),
    ops.RESHAPE: (
        "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Gather",
        "GatherElements", "GatherND", "ScatterND", "ScatterElements", "Pad", "Resize", "Upsample", "Expand",
        "Tile", "Shape", "Size", "ConstantOfShape", "Range", "DepthToSpace", "SpaceToDepth", "OneHot",
        "NonZero", "ReverseSequence", "Compress",
    ),
    ops.RECURRENT: ("LSTM", "GRU", "RNN"),
    ops.CONTROL: ("If", "Loop", "Scan"),
}

#: ONNX (default domain) op type -> canonical op kind
ONNX_RULES: dict[str, str] = {onnx_op: kind for kind, names in _TABLE.items() for onnx_op in names}

#: contrib ops of onnxruntime (domain com.microsoft) that have a canonical kind
CONTRIB_RULES: dict[str, str] = {
    "FusedConv": ops.CONV,
    "NhwcConv": ops.CONV,
    "FusedGemm": ops.GEMM,
    "FusedMatMul": ops.MATMUL,
    "Gelu": ops.ACTIVATION,
    "FastGelu": ops.ACTIVATION,
    "BiasGelu": ops.ACTIVATION,
    "QuickGelu": ops.ACTIVATION,
    "BiasAdd": ops.ELEMENTWISE,
    "SkipLayerNormalization": ops.NORM,
    "SimplifiedLayerNormalization": ops.NORM,
    "SkipSimplifiedLayerNormalization": ops.NORM,
}

_DEFAULT_DOMAINS = ("", "ai.onnx")


def canonical_op(onnx_op: str, domain: str = "") -> str:
    """The canonical IR op kind of an ONNX op (``ops.OPAQUE`` when there is no rule)."""
    if domain in _DEFAULT_DOMAINS:
        return ONNX_RULES.get(onnx_op, ops.OPAQUE)
    if domain == "com.microsoft":
        return CONTRIB_RULES.get(onnx_op, ops.OPAQUE)
    return ops.OPAQUE

