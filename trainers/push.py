"""`python -m trainers.push`: see `trainers.delivery` (the validated push)."""

from trainers.delivery.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
