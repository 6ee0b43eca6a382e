"""``python -m sclle_basicsr.enhance``: the ``sclle-enhance`` command."""
import sys

from sclle_basicsr.enhance.cli import main

sys.exit(main())
