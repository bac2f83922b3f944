"""Where tracking events come from: log files on disk (:mod:`.logfile`), Export-Clixml
files and remote Exchange servers. Every source yields :class:`msgtrack.events.TrackingEvent`
values and reports what it skipped to a :class:`msgtrack.report.RunReport`.
"""
