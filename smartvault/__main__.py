from __future__ import annotations

from smartvault.cli import main

main()
