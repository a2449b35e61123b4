"""``python -m pipelines run ...`` is the same as the ``newsflow`` console script."""

from pipelines.cli import main

raise SystemExit(main())
