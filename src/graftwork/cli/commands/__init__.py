"""The subcommands, one module per group: each ``add_parsers(sub)`` adds its parsers with their handlers."""
