"""`python -m trainers.attack`."""

from trainers.attack import main

raise SystemExit(main())
