"""The one base of the errors a step reports to its user, and the exit code each gets.

Every error the package raises for a reason the user can act on (a bad setting, data that fails
a gate, a model the gate refuses, a registry that is not there) derives from :class:`StepError`
and says in its message what to do. The command line catches exactly these (one decorator in
:mod:`.cli`) and turns them into that message on stderr and the exit code; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class StepError(Exception):
    """A step refused or could not run; the message names the cause and the fix."""

    exit_code = 1
