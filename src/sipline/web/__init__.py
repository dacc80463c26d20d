"""The web dashboard (docs/behaviour.md#dashboard): server-rendered pages under `/ui/` for portal admins
and operators, built on the same services as the REST methods."""
