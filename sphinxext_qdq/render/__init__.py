"""Turning a finished analysis into text: labels and values, DOT, the outline, running dot.

Pure: imports the analysis records, numpy and the standard library, never Sphinx.
"""
