"""The Prometheus workload, one module per thing it touches; nothing here imports ops.

`paths` (where the files live), `service` (the package and the systemd service), `flags` (the
command line), `config_file` (prometheus.yml and rule files, checked with promtool), `reload`
(SIGHUP and Prometheus's confirmation), `yaml_writer` (how those files are written); what goes
into prometheus.yml: `jobs` (the self-scrape job and relation jobs), `operator_jobs` (the
scrape-jobs option), `rules` (relation alert rules), `topology`, `checks` (the validators they
share) and `promql` (scoping a rule's expression). The charm imports the modules it calls.
"""
