"""``python -m pai.claims``: the command's old name, kept working (the code is :mod:`pai.compendium.claims`)."""
import sys

if __name__ == "__main__":
    from pai.compendium.claims.__main__ import main

    sys.exit(main())
