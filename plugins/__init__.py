"""The plugins that ship with unibackup, registered exactly like third-party ones."""
