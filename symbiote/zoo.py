"""``symbiote.zoo``: the built-in model builders (re-exported from :mod:`symbiote.frontend.zoo`)."""

from symbiote.frontend.zoo import (  # noqa: F401
    DEFAULT_OPSET,
    ZooError,
    bert,
    bert_base,
    build,
    lstm,
    mobilenet_v2,
    names,
    resnet18,
    resnet50,
    tiny_cnn,
)

__all__ = ["build", "names", "ZooError", "DEFAULT_OPSET", "resnet18", "resnet50", "mobilenet_v2", "bert", "bert_base", "lstm", "tiny_cnn"]
