"""``python -m ww.cli``: the ``ww`` command."""

from ww.cli import main

main()
