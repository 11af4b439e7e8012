"""Evaluate a three-body step-size agent: see physim.cli.rl_evaluate."""

from physim.cli.rl_evaluate import main

if __name__ == "__main__":
    main()
