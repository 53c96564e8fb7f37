"""``ort-cpu``: the CPU in front of the user, measured in onnxruntime (see ``model.py``)."""
