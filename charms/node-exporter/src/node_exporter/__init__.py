"""The node exporter workload, one module per thing it touches; nothing here imports ops.

- `paths`: where every file lives (`PATHS`; tests point it at a temporary directory).
- `flags`: the exporter's command line and the flags file the packaged unit reads.
- `exporter`: the Ubuntu package, the binary, the systemd service and why a start failed.
- `ports`: which process holds a TCP port, read from /proc.
- `sharing`: the claims by which the node-exporter units of one machine share its exporter.
"""
