"""Train a three-body step-size agent: see physim.cli.rl_timestep."""

from physim.cli.rl_timestep import main

if __name__ == "__main__":
    main()
