"""Nightly audits: checkpointed runs over the search pipeline, with findings an admin acts on.

One module per stage (STYLE.md's house plan):

- :mod:`~msgtrack.audit.config`: the TOML config (template for ``audit init``, loader).
- :mod:`~msgtrack.audit.days`: which local days to run, as UTC windows (DST-exact).
- :mod:`~msgtrack.audit.state`: the SQLite checkpoint and history, and the run lock.
- :mod:`~msgtrack.audit.ordering`: a day's events in a stable order, each row once.
- :mod:`~msgtrack.audit.rules`: events -> findings.
- :mod:`~msgtrack.audit.report`: counters, ``summary.json``, the Markdown/HTML report.
- :mod:`~msgtrack.audit.outputs`: durable day folders (fsync, rename, swap, recovery).
- :mod:`~msgtrack.audit.notify`: the report by mail (SMTP + STARTTLS).
- :mod:`~msgtrack.audit.schedule`: cron line, systemd units, Task Scheduler XML.
- :mod:`~msgtrack.audit.run`: :func:`run_audit`, the library entry the CLI calls.

Import from the modules (``from msgtrack.audit.run import run_audit``): importing the
package stays cheap.
"""
