"""The one place that registers config values, nodes, directives and the domain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sphinxext_qdq import __version__

if TYPE_CHECKING:
    from sphinx.application import Sphinx

#: Bump when the pickled environment data changes shape.
ENV_VERSION = 1


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.graphviz")
    app.add_config_value("qdq_models", {}, "env", types=frozenset({dict}))
    return {
        "version": __version__,
        "env_version": ENV_VERSION,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
