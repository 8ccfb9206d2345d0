"""``python -m asyncpress.cli``: the same commands as the ``asyncpress`` script."""

from asyncpress.cli import app

app()
