"""`python -m edge_lstm` is the same as the `edge-lstm` command."""

from edge_lstm.cli import main

main()
