"""`python -m trainers.delivery`: the push command (as `python -m trainers.push`)."""

from trainers.delivery.cli import main

raise SystemExit(main())
