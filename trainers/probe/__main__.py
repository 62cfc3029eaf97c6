"""`python -m trainers.probe`."""

from trainers.probe import main

raise SystemExit(main())
