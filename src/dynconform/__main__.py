"""``python -m dynconform``."""

from __future__ import annotations

import sys

from dynconform.cli import main

sys.exit(main())
