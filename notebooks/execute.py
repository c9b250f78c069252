#!/usr/bin/env python3
"""Executes a notebook and writes it with its outputs: execute.py IN.ipynb OUT.ipynb.

The tests run it on tour.ipynb into a temp dir (tests/notebook.rs); to refresh the committed
outputs after a change, run it in place with the tests' venv and the release binary:

    PATTERNS_BIN=$CARGO_TARGET_DIR/release/patterns \\
        ~/.cache/patterns-notebook-venv/bin/python notebooks/execute.py notebooks/tour.ipynb notebooks/tour.ipynb

A cell that fails (an assertion) makes it exit 1 with the cell and its error.
"""
import pathlib
import sys

import nbclient
import nbformat


def main():
    source, target = map(pathlib.Path, sys.argv[1:3])
    nb = nbformat.read(source, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(source.parent)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    # Execution times and ids change every run: keep the file stable.
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, target)


if __name__ == "__main__":
    main()
