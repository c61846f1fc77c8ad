"""The one base class of the errors the command line reports as ``error: ...`` with exit
status 2: a problem with what was asked (a config key, a dataset layout, a file that is not a
checkpoint), not a failure of the program. This module imports nothing, so ``translate``
can catch these errors without importing the modules (and PyTorch) that raise them."""


class UserError(Exception):
    """Something the user can fix; its message says what and how."""
