"""`python -m trainers.shift_invariance`."""

from trainers.shift_invariance import main

raise SystemExit(main())
