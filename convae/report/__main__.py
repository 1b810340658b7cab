"""``python -m convae.report``: the same as the convae-report command."""

import sys

from convae.report.cli import main

sys.exit(main())
