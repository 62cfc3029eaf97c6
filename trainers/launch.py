"""`python -m trainers.launch`: see `trainers.framework.multiworker.launch`."""

from trainers.framework.multiworker.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
