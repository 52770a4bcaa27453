"""``python -m pai.notebook``: the command's old name, kept working (the code is :mod:`pai.compendium.notebook`)."""
import sys

if __name__ == "__main__":
    from pai.compendium.notebook import main

    sys.exit(main())
