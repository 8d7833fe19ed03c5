"""`python -m appliance` is the `vitrine` command."""

import sys

from appliance.cli import main

sys.exit(main())
