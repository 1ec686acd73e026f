"""The signal module's numbers and functions, without its enums.

``import signal`` turns every signal number and handler into IntEnum members as it loads,
importing ``enum`` for them: ~1 ms of every ``run``, which needs neither. ``_signal``
is the C module under it, with the same names (SIGTERM, SIG_DFL, signal, getsignal,
pthread_sigmask, set_wakeup_fd...); its answers are plain ints where signal's are enum
members equal to them. Code that needs a signal's name imports signal where it does.
"""

from _signal import *  # noqa: F401,F403
