"""Roll a checkpoint out and write the report: see physim.cli.evaluate."""

from physim.cli.evaluate import main

if __name__ == "__main__":
    main()
