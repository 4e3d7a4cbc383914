"""Entry points of the `samizdat` command, one module per subcommand."""
