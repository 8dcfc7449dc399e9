"""The command-line entry points, one module each (``python -m cli.<name>``); they import the layers below."""
