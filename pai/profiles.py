"""``python -m pai.profiles``: the command's old name, kept working (the code is :mod:`pai.compendium.profiles`)."""
import sys

if __name__ == "__main__":
    from pai.compendium.profiles import main

    sys.exit(main())
