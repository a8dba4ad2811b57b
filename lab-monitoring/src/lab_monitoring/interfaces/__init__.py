"""The relation interfaces these charms speak, each in both wire formats it has in the wild."""
