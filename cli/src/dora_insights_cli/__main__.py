"""``python -m dora_insights_cli``."""

import sys

from dora_insights_cli.main import main

sys.exit(main())
