"""Integer arithmetic of quantized groups: requantization recipes, the integer reference
(an integer-only re-run of the model checked against ONNX Runtime) and test vectors.

Pure: imports the analysis, onnx and numpy, never Sphinx.
"""
