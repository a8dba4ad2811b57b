"""Code shared by this repository's monitoring charms.

Modules without ops (workload modules use them): `packages` (apt), `packaged_service` (systemd:
start, health, back-off, low ports, journal), `files` (compare-then-write, flags files),
`status` (status and log lines), `loopback` (HTTP to the charm's own service).
Modules with ops (charm code uses them): `relation_data` and the relation interfaces in
`lab_monitoring.interfaces`.
"""
