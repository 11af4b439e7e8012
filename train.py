"""Train a physim model: `python train.py +experiment=ns2d` (see README)."""

from physim.cli.train import main

if __name__ == "__main__":
    main()
