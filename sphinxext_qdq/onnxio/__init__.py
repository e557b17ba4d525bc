"""Reading ONNX files: checked paths, safe parsing, tensors, external data, dtypes.

Knows nothing of the analysis or of Sphinx; imports onnx and numpy only.
"""
