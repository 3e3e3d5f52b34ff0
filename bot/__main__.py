import sys

from bot.cli import main

sys.exit(main(["bot", *sys.argv[1:]]))
