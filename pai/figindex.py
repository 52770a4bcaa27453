"""``python -m pai.figindex``: the command's old name, kept working (the code is :mod:`pai.compendium.figindex`)."""
import sys

if __name__ == "__main__":
    from pai.compendium.figindex import main

    sys.exit(main())
