"""ActiveSync (EAS) reply analysis: IIS W3C logs joined with message tracking.

The problem this package exists to catch (issue #6, eas-facts §1.5): an iOS 5 device on
Exchange 2010 replies to an S/MIME message with ``SmartReply`` instead of ``SendMail``,
and internal recipients may see a blank body. Nothing in the logs proves a body was
blank, so every finding is a *candidate*.

Modules, one per stage:

- :mod:`~msgtrack.eas.query`: plain and base64 ``cs-uri-query`` forms, ``&Log=`` tokens.
- :mod:`~msgtrack.eas.useragent`: user agent -> device, iOS build and version.
- :mod:`~msgtrack.eas.iis`: the streaming IIS W3C reader (:func:`read_iis`).
- :mod:`~msgtrack.eas.devices`: report A, reply/forward method per device.
- :mod:`~msgtrack.eas.replies`: report B, candidate blank encrypted replies.
- :mod:`~msgtrack.eas.report`: report rows -> the project's sinks.
"""
