"""The one exception type the lab raises for problems a user can fix."""


class LabError(Exception):
    """A lab problem with a message for a person: what failed, on which component, what to try.

    ``component`` names the part of the lab (``vcsim``, ``fw1``, ``model``...). The CLI prints
    ``lab: <component>: <message>`` and exits 1; it never shows a traceback for a LabError.
    """

    def __init__(self, component: str, message: str):
        super().__init__(f"{component}: {message}")
        self.component = component
        self.message = message
