import sys

from sipline.cli.main import main

sys.exit(main())
