"""The canonical IR op set.

Every node carries its ONNX op type (for export) and one canonical op kind (for
analysis and cost models). The frontend's rules table (``symbiote.frontend.rules``)
maps ONNX ops to these kinds; an ONNX op with no rule becomes ``OPAQUE``.
"""

from __future__ import annotations

CONV = "conv"                      # Conv, ConvInteger, QLinearConv
CONV_TRANSPOSE = "conv_transpose"  # ConvTranspose
GEMM = "gemm"                      # Gemm (2-D, optional transpose and bias)
MATMUL = "matmul"                  # MatMul, MatMulInteger, QLinearMatMul, batched attention matmuls
POOL = "pool"                      # MaxPool, AveragePool, Global*Pool, LpPool
ELEMENTWISE = "elementwise"        # Add, Mul, Sub, Div, Pow, Sqrt, Where, Cast, (De)QuantizeLinear, ...
NORM = "norm"                      # BatchNormalization, LayerNormalization, InstanceNormalization, ...
ACTIVATION = "activation"          # Relu, Clip, Sigmoid, Tanh, HardSwish, Gelu, PRelu, Softmax, ...
REDUCE = "reduce"                  # ReduceMean, ReduceSum, ArgMax, ...
RESHAPE = "reshape"                # Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice, Gather, Pad, Resize, ...
RECURRENT = "recurrent"            # LSTM, GRU, RNN
CONTROL = "control"                # If, Loop, Scan (subgraphs kept verbatim)
OPAQUE = "opaque"                  # no rule yet: ONNX definition kept, priced as memory traffic

ALL = (CONV, CONV_TRANSPOSE, GEMM, MATMUL, POOL, ELEMENTWISE, NORM, ACTIVATION, REDUCE, RESHAPE, RECURRENT, CONTROL, OPAQUE)

#: ops whose MACs dominate and that map onto a MAC array
COMPUTE = frozenset({CONV, CONV_TRANSPOSE, GEMM, MATMUL, RECURRENT})
