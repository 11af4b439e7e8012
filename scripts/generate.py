"""Generate a dataset: `python scripts/generate.py data=ns2d` (physim.cli.generate)."""

from physim.cli.generate import main

if __name__ == "__main__":
    main()
