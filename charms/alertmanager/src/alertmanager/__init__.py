"""The Alertmanager workload: the archive's prometheus-alertmanager package, its files, amtool.

Nothing here knows about Juju. One module per thing the charm touches:

- `paths`: where the files live (`PATHS`; tests point it at a temporary directory);
- `package`: the Debian/Ubuntu package (install without recommends, version);
- `configuration`: alertmanager.yml and the notification templates, checked with
  `amtool check-config` before they replace the live ones;
- `masking`: which values of an alertmanager.yml are secrets, masked for show-config and
  searched for in every message before it reaches a log or a status;
- `flags`: the command line, in the /etc/default file the packaged unit reads;
- `service`: the systemd service (start, restart, reload confirmed from Alertmanager's own
  metrics, why it failed, stop).

The package is the same on the three releases the charm runs on: Ubuntu 22.04 ships
Alertmanager 0.23, Debian 12 0.25 (this repository's functional tests), Ubuntu 24.04 0.26.
Only flags and configuration keys that 0.23 knows are used.
"""
