"""Allow ``python -m server_stub``."""

from server_stub.cli import main

raise SystemExit(main())
