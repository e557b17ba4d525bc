"""Pure analysis of QDQ ONNX models: imports onnx and numpy only, never Sphinx."""
