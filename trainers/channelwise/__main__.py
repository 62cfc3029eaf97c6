"""`python -m trainers.channelwise`."""

from trainers.channelwise import main

raise SystemExit(main())
