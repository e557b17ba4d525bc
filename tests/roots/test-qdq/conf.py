extensions = ["myst_parser", "sphinx.ext.graphviz", "sphinxext_qdq"]
root_doc = "index"
graphviz_output_format = "svg"
qdq_models = {"tiny": "models/tiny.onnx"}
exclude_patterns = ["_build"]
numfig = True
