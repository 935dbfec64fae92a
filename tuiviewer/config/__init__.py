"""The foundation's configuration files: ``config.toml`` (:mod:`.settings`) and ``nodes.toml``
(:mod:`.nodes`), read strictly by one TOML reader, written with comments kept."""
