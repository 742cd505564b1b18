import sys

from trdr_tui.cli import main

sys.exit(main())
