"""``python -m convae.bench``: the same as the convae-bench command."""

from convae.bench.cli import main

main()
