"""The Sphinx glue: the only folder that imports Sphinx or docutils.

:mod:`.extension` registers everything; directives read a model through
:mod:`sphinxext_qdq.analysis` and return docutils nodes; the domain holds the targets;
the collector records what each page read.
"""
