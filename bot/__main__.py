"""`python -m bot`: run the Discord bot, as `kaika bot` does, without the command line."""

import sys

from bot.app import main

sys.exit(main())
