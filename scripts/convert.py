"""Convert a dataset: `python scripts/convert.py path=<file or folder> output=<folder>`
(physim.cli.convert; see conf/convert.yaml)."""

from physim.cli.convert import main

if __name__ == "__main__":
    main()
