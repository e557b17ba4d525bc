"""``python -m sphinxext_qdq`` runs the ``qdq-graph`` command line."""

from sphinxext_qdq.cli import main

raise SystemExit(main())
