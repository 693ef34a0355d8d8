"""The pluggy markers, made once for the whole project."""

import pluggy

PROJECT_NAME = "unibackup"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
