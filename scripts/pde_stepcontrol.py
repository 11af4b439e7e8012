"""Learned step-size control for the PDE solvers: see physim.cli.pde_stepcontrol."""

from physim.cli.pde_stepcontrol import main

if __name__ == "__main__":
    main()
